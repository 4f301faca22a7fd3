// A stdlib-only program: its build info records the Go toolchain version, whose standard-library
// advisories the end-to-end tests expect.
package main

import (
	"crypto/sha256"
	"fmt"
	"net/url"
	"os"
)

func main() {
	for _, a := range os.Args[1:] {
		u, err := url.Parse(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		fmt.Printf("%s %x\n", u.Host, sha256.Sum256([]byte(a)))
	}
}
