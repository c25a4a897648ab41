// Command dwarfvars prints the variables and parameters DWARF gives the
// functions of a Go binary whose name starts with a prefix, read with Go's
// own debug/dwarf (debug/elf, debug/macho, debug/pe): one line per
// variable,
//
//	<function>\t<name>
//
// at any lexical depth, not inside an inlined call, with the `&` Go puts
// before a variable kept by address removed. The oracle of which captured
// variables an unstripped build can name at all (semantics.rs).
//
// Usage: dwarfvars BINARY PREFIX
package main

import (
	"debug/dwarf"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"os"
	"strings"
)

func open(path string) (*dwarf.Data, error) {
	if f, err := elf.Open(path); err == nil {
		return f.DWARF()
	}
	if f, err := macho.Open(path); err == nil {
		return f.DWARF()
	}
	f, err := pe.Open(path)
	if err != nil {
		return nil, err
	}
	return f.DWARF()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: dwarfvars BINARY PREFIX")
		os.Exit(2)
	}
	d, err := open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	prefix := os.Args[2]
	r := d.Reader()
	// The tags of the open entries: compile unit, subprogram, ...
	var open []dwarf.Tag
	fn := ""
	for {
		e, err := r.Next()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
			continue
		}
		inlined := false
		for _, t := range open {
			inlined = inlined || t == dwarf.TagInlinedSubroutine
		}
		switch {
		case e.Tag == dwarf.TagSubprogram && len(open) == 1:
			fn, _ = e.Val(dwarf.AttrName).(string)
		case (e.Tag == dwarf.TagVariable || e.Tag == dwarf.TagFormalParameter) &&
			len(open) >= 2 && !inlined && strings.HasPrefix(fn, prefix):
			name, _ := e.Val(dwarf.AttrName).(string)
			fmt.Printf("%s\t%s\n", fn, strings.TrimPrefix(name, "&"))
		}
		if e.Children {
			open = append(open, e.Tag)
		}
	}
}
