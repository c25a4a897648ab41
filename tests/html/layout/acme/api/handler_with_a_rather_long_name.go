// Package api has a package path of 35 characters.
package api

import (
	"fmt"
	"sync"
)

var mu sync.Mutex

func closeOrderHandler(n int) (s string) {
	mu.Lock()
	defer mu.Unlock()
	return fmt.Sprint("order", n)
}

func finalizeOrderHandler(n int) (s string) {
	defer func() { s += fmt.Sprint(n) }()
	return "finalize"
}

func revokeCertificateHandler(ns []int) (s string) {
	for _, n := range ns {
		defer func() { s += fmt.Sprint(n) }()
	}
	return "revoke"
}

// Serve calls each handler.
func Serve(n int) string {
	return closeOrderHandler(n) + finalizeOrderHandler(n) + revokeCertificateHandler([]int{n, n + 1})
}
