// A program with long package paths, function names and file names, for
// the layout test of the HTML report (tests/html/report.test.mjs): chart
// labels of 35 to 56 characters, locations like
// plugin_installer_with_a_long_name.go:175, and a function with two defers
// in loops and many returns (two in-loop reasons and too-many-returns).
package main

import (
	"fmt"
	"os"

	"example.com/smallstep/certificates/acme/api"
	"example.com/smallstep/certificates/authority"
	"example.com/smallstep/certificates/authority/provisioner"
)

func main() {
	a := authority.New()
	fmt.Println(a.Run(len(os.Args)))
	r := provisioner.NewPluginInstallerRegistry()
	fmt.Println(r.Exercise(len(os.Args)))
	fmt.Println(api.Serve(len(os.Args)))
}
