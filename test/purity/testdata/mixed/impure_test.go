package mixed

import "os"

var _ = os.Args
