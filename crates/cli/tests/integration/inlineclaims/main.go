// Inlining claims (issue 14 item 7): three small deferring functions, each
// with a twin without the defer, so that `go build -gcflags=-m=2` says what
// keeps each from inlining and what would without the defer.
package main

var sink int

// g is the deferred call.
//
//go:noinline
func g(x int) { sink += x }

// marked: noinline; -m=2 says "marked go:noinline" before the defer.
//
//go:noinline
func marked(x int) {
	defer g(x)
	sink += x
}

// markedNoDefer: marked's twin without the defer, still noinline.
//
//go:noinline
func markedNoDefer(x int) {
	sink += x
}

// big: -m=2 says "unhandled op DEFER"; its twin bigNoDefer is over the
// budget ("function too complex": two calls of a noinline function cost
// more than 80), so the defer is not what blocks it. Its machine code stays
// small.
func big(x int) {
	defer g(x)
	g(x + 1)
	g(x + 2)
}

// bigNoDefer: big's twin without the defer.
func bigNoDefer(x int) {
	g(x + 1)
	g(x + 2)
}

// small: only the defer keeps it from inlining; its twin inlines.
func small(x int) {
	defer g(x)
	sink += x
}

// smallNoDefer: small's twin without the defer.
func smallNoDefer(x int) {
	sink += x
}

func main() {
	for i := 0; i < 3; i++ {
		marked(i)
		big(i)
		small(i)
		markedNoDefer(i)
		bigNoDefer(i)
		smallNoDefer(i)
	}
	println(sink)
}
