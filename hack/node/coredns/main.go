// Command coredns is CoreDNS with only the plugins weft's local node needs (see
// hack/node/build-coredns.sh). Leaving out the cloud back ends (route53, azure, clouddns, etcd)
// cuts the cold build roughly in half on 2 cores, and leaving out `forward` and `grpc` means
// this binary cannot send a query off the machine whatever its Corefile says.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// directives keeps CoreDNS's plugin.cfg order (the order plugins see a query), restricted
// to the plugins imported above.
var directives = []string{
	"reload", "bind", "ready", "health", "prometheus", "errors", "log",
	"loadbalance", "cache", "hosts", "kubernetes", "loop", "whoami",
}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
