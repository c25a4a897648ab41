// Package authority has a package path of 44 characters.
package authority

import (
	"fmt"
	"sync"
)

// Authority has methods with defers.
type Authority struct {
	mu  sync.Mutex
	log []string
}

// New returns an Authority.
func New() *Authority { return &Authority{} }

func (a *Authority) authorizeRevokeWithProvisioner(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprint("revoke", n)
}

func (a *Authority) authorizeSignWithProvisioner(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprint("sign", n)
}

func (a *Authority) authorizeRenewWithProvisioner(ns []int) (s string) {
	for _, n := range ns {
		defer func() { a.log = append(a.log, fmt.Sprint(n)) }()
	}
	return "renew"
}

func (a *Authority) rekeyCertificateWithProvisioner(ns []int) (s string) {
	for _, n := range ns {
		defer fmt.Sprint(n)
		s += fmt.Sprint(n)
	}
	return s
}

// Run calls each method.
func (a *Authority) Run(n int) string {
	return a.authorizeRevokeWithProvisioner(n) + a.authorizeSignWithProvisioner(n) +
		a.authorizeRenewWithProvisioner([]int{n}) + a.rekeyCertificateWithProvisioner([]int{n})
}
