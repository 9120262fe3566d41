// Command guestprog is the lane's own test payload: it reports what the
// guest gave it and exits with the status named by its first argument.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	wd, _ := os.Getwd()
	data, err := os.ReadFile("testdata/hello.txt")
	fmt.Printf("args=%s\n", strings.Join(os.Args[1:], "|"))
	fmt.Printf("cwd=%s in_vm=%s require=%s\n", wd, os.Getenv("SLUICE_IN_VM"), os.Getenv("SLUICE_REQUIRE"))
	fmt.Printf("testdata=%q err=%v\n", data, err)
	fmt.Print("no newline before the exit line")
	status := 0
	if len(os.Args) > 1 {
		status, _ = strconv.Atoi(os.Args[1])
	}
	os.Exit(status)
}
