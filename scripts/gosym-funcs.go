// gosym-funcs prints the function table of a Go executable as Go's own
// debug/gosym reads it from the pclntab. scripts/real-binaries.py builds it
// at test time with the oracle toolchain (standard library only) and uses it
// where `go tool objdump` has no symbols to work with (stripped binaries)
// and on the copies of real binaries it makes.
//
//	gosym-funcs BINARY
//	gosym-funcs -lines BINARY < pcs
//
// With -lines it is `go tool addr2line` (the same loop over the same
// debug/gosym call, Table.PCToLine) on a table found as below, for the
// binaries whose table addr2line does not find. Otherwise it prints, one
// item per line:
//
//	text 0xADDR 0xSIZE        the text section (ELF/Mach-O .text/__text, PE
//	                          image base + .text): the text start
//	                          cmd/internal/objfile gives debug/gosym
//	pclntab WHERE             how the table was found
//	0xENTRY 0xEND NAME        one line per function, debug/gosym's Funcs
//
// The table is found in the sections where cmd/internal/objfile looks for
// it (.gopclntab, .data.rel.ro.gopclntab, __gopclntab); failing that (PIE
// with external linking puts it inside .data.rel.ro; a PE inside .rdata,
// where objfile finds it by the runtime.pclntab symbol that -s removes), by
// its magic in the read-only data sections: every occurrence of a pclntab magic is handed to debug/gosym,
// and the one whose table names runtime.main is kept (more than one is an
// error). This program reads no field of the table itself.
//
// Since Go 1.18 debug/gosym computes every entry as the text start it is
// given plus the table's offset. That start is right for internal linking;
// with external linking the C linker puts its own code first and every
// entry is early by the same amount, which the caller measures (see
// calibrate() in real-binaries.py) from the call targets of a disassembly.
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/gosym"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// section is a named chunk of the file's loaded data.
type section struct {
	name string
	data func() ([]byte, error)
}

// image is what the program needs from an executable: the text start and
// size, the table's usual places, and the sections to search otherwise.
type image struct {
	text, textSize uint64
	named          []section // where cmd/internal/objfile looks
	search         []section // read-only data to search by magic
}

func openELF(f *elf.File) image {
	var im image
	if s := f.Section(".text"); s != nil {
		im.text, im.textSize = s.Addr, s.Size
	}
	for _, n := range []string{".gopclntab", ".data.rel.ro.gopclntab"} {
		if s := f.Section(n); s != nil {
			im.named = append(im.named, section{n, s.Data})
		}
	}
	for _, n := range []string{".data.rel.ro", ".rodata"} {
		if s := f.Section(n); s != nil && s.Type != elf.SHT_NOBITS {
			im.search = append(im.search, section{n, s.Data})
		}
	}
	return im
}

func openPE(f *pe.File) image {
	var im image
	var base uint64
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		base = uint64(h.ImageBase)
	case *pe.OptionalHeader64:
		base = h.ImageBase
	}
	if s := f.Section(".text"); s != nil {
		im.text, im.textSize = base+uint64(s.VirtualAddress), uint64(s.VirtualSize)
	}
	for _, n := range []string{".rdata", ".data"} {
		if s := f.Section(n); s != nil {
			im.search = append(im.search, section{n, s.Data})
		}
	}
	return im
}

func openMachO(f *macho.File) image {
	var im image
	if s := f.Section("__text"); s != nil {
		im.text, im.textSize = s.Addr, s.Size
	}
	if s := f.Section("__gopclntab"); s != nil {
		im.named = append(im.named, section{"__gopclntab", s.Data})
	}
	for _, n := range []string{"__rodata", "__data"} {
		if s := f.Section(n); s != nil {
			im.search = append(im.search, section{n, s.Data})
		}
	}
	return im
}

func open(path string) (image, error) {
	if f, err := elf.Open(path); err == nil {
		return openELF(f), nil
	}
	if f, err := pe.Open(path); err == nil {
		return openPE(f), nil
	}
	if f, err := macho.Open(path); err == nil {
		return openMachO(f), nil
	}
	return image{}, errors.New("not an ELF, PE or Mach-O file")
}

// table hands data to debug/gosym and keeps the result if it names
// runtime.main (debug/gosym panics on some malformed input: that is a
// rejection too).
func table(data []byte, text uint64) (t *gosym.Table) {
	defer func() {
		if recover() != nil {
			t = nil
		}
	}()
	t, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil || len(t.Funcs) == 0 || t.LookupFunc("runtime.main") == nil {
		return nil
	}
	return t
}

// magics are the pclntab versions' first four bytes (Go 1.2, 1.16, 1.18,
// 1.20), little-endian as on every target here.
var magics = []uint32{0xfffffffb, 0xfffffffa, 0xfffffff0, 0xfffffff1}

func find(im image) (*gosym.Table, string, error) {
	for _, s := range im.named {
		d, err := s.data()
		if err != nil {
			return nil, "", err
		}
		if t := table(d, im.text); t != nil {
			return t, s.name, nil
		}
	}
	var found *gosym.Table
	var where []string
	for _, s := range im.search {
		d, err := s.data()
		if err != nil {
			return nil, "", err
		}
		for _, m := range magics {
			var key [4]byte
			binary.LittleEndian.PutUint32(key[:], m)
			for i := 0; ; i++ {
				j := bytes.Index(d[i:], key[:])
				if j < 0 {
					break
				}
				i += j
				if t := table(d[i:], im.text); t != nil {
					found = t
					where = append(where, fmt.Sprintf("%s+%#x", s.name, i))
				}
			}
		}
	}
	switch len(where) {
	case 0:
		return nil, "", errors.New("no pclntab found")
	case 1:
		return found, "magic in " + where[0], nil
	}
	return nil, "", fmt.Errorf("%d pclntab candidates: %v", len(where), where)
}

func main() {
	lines := flag.Bool("lines", false, "answer pcs read from stdin as `go tool addr2line` does")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gosym-funcs [-lines] BINARY")
		os.Exit(2)
	}
	path := flag.Arg(0)
	im, err := open(path)
	if err == nil && im.textSize == 0 {
		err = errors.New("no text section")
	}
	var t *gosym.Table
	var where string
	if err == nil {
		t, where, err = find(im)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gosym-funcs: %s: %v\n", path, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	if *lines {
		// cmd/addr2line's loop: a pc per line in, "name\nfile:line" out.
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			pc, _ := strconv.ParseUint(strings.TrimPrefix(in.Text(), "0x"), 16, 64)
			file, line, fn := t.PCToLine(pc)
			name := "?"
			if fn != nil {
				name = fn.Name
			} else {
				file, line = "?", 0
			}
			fmt.Fprintf(w, "%s\n%s:%d\n", name, file, line)
		}
	} else {
		fmt.Fprintf(w, "text %#x %#x\npclntab %s\n", im.text, im.textSize, where)
		for _, f := range t.Funcs {
			fmt.Fprintf(w, "%#x %#x %s\n", f.Entry, f.End, f.Name)
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "gosym-funcs:", err)
		os.Exit(1)
	}
}
