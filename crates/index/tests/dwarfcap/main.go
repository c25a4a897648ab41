// Closures for the DWARF capture test (crates/index/tests/dwarf.rs): each
// closure captures variables of distinct names, by value and by reference.
package main

import (
	"fmt"
	"os"
)

type trio struct{ a, b, c int }

var sink func()

//go:noinline
func use(f func()) { sink = f; f() }

//go:noinline
func mixed(n int) {
	i := n          // assigned after capture: by ref
	s := os.Args[0] // string by value: 16
	ok := n > 1     // bool by value: 1
	t := trio{n, n + 1, n + 2}
	var big [20]int // 160 bytes: by ref
	big[3] = n
	f := func() {
		fmt.Println(i, s, ok, t.a+t.b+t.c, big[3])
	}
	i++
	use(f)
}

//go:noinline
func results(n int) (r int, err error) {
	x := n * 2
	defer func() {
		if recover() != nil {
			r = x
			err = fmt.Errorf("boom")
		}
	}()
	if n > 100 {
		panic("big")
	}
	return n, nil
}

//go:noinline
func arr(n int) {
	a3 := [3]int{n, n, n}
	var b byte = byte(n)
	f := func() { fmt.Println(a3[1], b) }
	use(f)
}

//go:noinline
func nested(n int) {
	p := n
	q := "q"
	f := func() {
		g := func() { p++; fmt.Println(q) }
		use(g)
	}
	use(f)
}

//go:noinline
func sum5(a [5]int) int { return a[0] + a[4] }

//go:noinline
func arrays(n int) {
	a5 := [5]int{n, n, n, n, n} // by value, 40 bytes, not SSA-able: DWARF "&a5"
	k := n + 1
	f := func() { fmt.Println(sum5(a5), k) }
	use(f)
	c5 := [5]int{n, n, n, n, n} // the same, captured last
	g := func() { fmt.Println(k, sum5(c5)) }
	use(g)
}

func main() {
	mixed(len(os.Args))
	r, err := results(len(os.Args))
	fmt.Println(r, err)
	arr(3)
	nested(4)
	arrays(5)
}
