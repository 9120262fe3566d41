// Command emptyprog is the smallest Go program: cheap to build for other
// GOAMD64 levels in binary checks.
package main

func main() {}
