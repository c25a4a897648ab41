// Command deferfields prints the DWARF type runtime._defer of each Go
// binary named on the command line, read with Go's own debug/dwarf
// (debug/elf, debug/macho with its compressed __zdebug sections,
// debug/pe): one line per binary,
//
//	<path>\t<byte size>\t<name>:<offset>:<size> ...
//
// or "<path>\tnone" when the binary has no DWARF or no such type. The
// oracle of the integration test defer_fields (defer_fields.rs).
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

func deferType(d *dwarf.Data) (*dwarf.StructType, error) {
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return nil, err
		}
		if e.Tag == dwarf.TagStructType && e.Val(dwarf.AttrName) == "runtime._defer" {
			t, err := d.Type(e.Offset)
			if err != nil {
				return nil, err
			}
			return t.(*dwarf.StructType), nil
		}
		if e.Tag != dwarf.TagCompileUnit {
			r.SkipChildren()
		}
	}
}

func main() {
	for _, path := range os.Args[1:] {
		d, err := open(path)
		var t *dwarf.StructType
		if err == nil {
			t, err = deferType(d)
		}
		if err != nil || t == nil {
			fmt.Printf("%s\tnone\n", path)
			continue
		}
		var fs []string
		for _, f := range t.Field {
			fs = append(fs, fmt.Sprintf("%s:%d:%d", f.Name, f.ByteOffset, f.Type.Size()))
		}
		fmt.Printf("%s\t%d\t%s\n", path, t.ByteSize, strings.Join(fs, " "))
	}
}
