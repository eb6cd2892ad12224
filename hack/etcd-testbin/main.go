// Command etcd runs etcd's own main; a wrapper module is needed because
// `go install` refuses etcd's replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
