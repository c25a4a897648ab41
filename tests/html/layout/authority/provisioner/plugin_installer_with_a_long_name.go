// Package provisioner has a package path of 56 characters, long type and
// method names, and sites past line 100 of a file with a long name.
package provisioner

import (
	"errors"
	"fmt"
	"sync"
)

// PluginInstallerRegistry has methods with defers.
type PluginInstallerRegistry struct {
	mu      sync.Mutex
	plugins map[string]int
	log     []string
}

// NewPluginInstallerRegistry returns an empty registry.
func NewPluginInstallerRegistry() *PluginInstallerRegistry {
	return &PluginInstallerRegistry{plugins: map[string]int{}}
}

func (r *PluginInstallerRegistry) releaseQueue(q []string) {
	r.log = append(r.log, fmt.Sprint("release", len(q)))
}

// drainPluginQueuesWithRetries has two defers in loops and many returns.
func (r *PluginInstallerRegistry) drainPluginQueuesWithRetries(xs [][]string, mode int) (n int, err error) {
	for _, q := range xs {
		defer r.releaseQueue(q)
	}
	for i := range xs {
		defer func() { n += i }()
	}
	switch mode {
	case 0:
		return 1, nil
	case 1:
		return 2, nil
	case 2:
		return 3, errors.New("two")
	case 3:
		return 4, errors.New("three")
	case 4:
		return 5, nil
	case 5:
		return 6, errors.New("five")
	case 6:
		return 7, nil
	case 7:
		return 8, errors.New("seven")
	case 8:
		return 9, nil
	}
	return 0, nil
}

func (r *PluginInstallerRegistry) installPluginFromArchiveWithChecksum(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugins[name]++
	return r.plugins[name]
}

func (r *PluginInstallerRegistry) uninstallPluginAndRemoveConfiguration(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.plugins, name)
	return len(r.plugins)
}

func (r *PluginInstallerRegistry) upgradePluginsInDependencyOrder(names []string) (s string) {
	for _, n := range names {
		defer func() { s += n }()
	}
	return "upgrade"
}

func (r *PluginInstallerRegistry) verifyPluginSignaturesAgainstKeyring(names []string) (s string) {
	defer func() {
		if e := recover(); e != nil {
			s = fmt.Sprint(e)
		}
	}()
	if len(names) > 3 {
		panic("too many")
	}
	return "verified"
}

func (r *PluginInstallerRegistry) listInstalledPluginsByInstallationTime() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.plugins))
	for k := range r.plugins {
		out = append(out, k)
	}
	return out
}

func (r *PluginInstallerRegistry) rollbackFailedPluginInstallations(names []string) (s string) {
	for _, n := range names {
		defer fmt.Sprint(n)
		s += n
	}
	return s
}

func (r *PluginInstallerRegistry) reloadPluginConfigurationFromDisk(path string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("reload %s: %w", path, err)
		}
	}()
	if path == "" {
		return errors.New("no path")
	}
	return nil
}

func (r *PluginInstallerRegistry) pruneUnusedPluginArtifactsOlderThan(days int) (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.plugins {
		if v < days {
			delete(r.plugins, k)
			n++
		}
	}
	return n
}

func (r *PluginInstallerRegistry) exportPluginManifestForOfflineMirror(names []string) (s string) {
	for i := range names {
		defer func() { s += fmt.Sprint(i) }()
	}
	return "export"
}

func (r *PluginInstallerRegistry) importPluginManifestFromOfflineMirror(manifest string) (n int) {
	defer func() { n += len(manifest) }()
	return 1
}

func (r *PluginInstallerRegistry) recordPluginInstallationMetricsForAudit(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, name)
}

// Exercise calls each method.
func (r *PluginInstallerRegistry) Exercise(n int) string {
	names := []string{"a", "b"}
	d, err := r.drainPluginQueuesWithRetries([][]string{names, names}, n)
	s := fmt.Sprint(d, err)
	s += fmt.Sprint(r.installPluginFromArchiveWithChecksum("a"))
	s += fmt.Sprint(r.uninstallPluginAndRemoveConfiguration("b"))
	s += r.upgradePluginsInDependencyOrder(names)
	s += r.verifyPluginSignaturesAgainstKeyring(names)
	s += fmt.Sprint(r.listInstalledPluginsByInstallationTime())
	s += r.rollbackFailedPluginInstallations(names)
	s += fmt.Sprint(r.reloadPluginConfigurationFromDisk(""))
	s += fmt.Sprint(r.pruneUnusedPluginArtifactsOlderThan(n))
	s += r.exportPluginManifestForOfflineMirror(names)
	s += fmt.Sprint(r.importPluginManifestFromOfflineMirror("m"))
	r.recordPluginInstallationMetricsForAudit("a")
	return s
}
