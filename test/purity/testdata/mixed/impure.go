package mixed

import (
	"fmt"
	"github.com/cilium/ebpf"
	"github.com/containerd/cgroups/v3"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	clock "time"
)

func f() {
	go func() {}()
	_ = clock.Now()
	clock.Sleep(1)
	_ = os.Args
	_ = rand.IntN(3)
	fmt.Println("hello")
}
