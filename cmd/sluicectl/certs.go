package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

// Environment naming the credential sluicectl presents to an https brain:
// SLUICE_CERTS is a certificate directory (ca.crt, and NAME.crt/.key for
// NAME = SLUICE_IDENTITY, default admin); SLUICE_TLS_CERT, SLUICE_TLS_KEY
// and SLUICE_CA name the files one by one instead.
const (
	envCertDir  = "SLUICE_CERTS"
	envIdentity = "SLUICE_IDENTITY"
	envCert     = "SLUICE_TLS_CERT"
	envKey      = "SLUICE_TLS_KEY"
	envCA       = "SLUICE_CA"
)

const certsUsage = `usage:
  sluicectl certs init DIR [-san NAME,IP...]
      create a cluster CA in DIR (ca.crt, ca.key), the brain's serving
      certificate (brain.crt: localhost, 127.0.0.1, ::1 and -san) and an
      admin operator credential (admin.crt)
  sluicectl certs issue [-dir DIR] [-scope read|submit|admin | -brain [-san ...]] [-valid DURATION] NAME
      a host certificate for host NAME (the agent's -tls-cert), or with
      -scope an operator credential, or with -brain a brain's; written as
      DIR/NAME.crt and DIR/NAME.key (DIR defaults to $SLUICE_CERTS)
  sluicectl [--brain URL] certs revoke HOST
      refuse every certificate of HOST issued up to now (admin scope)
  sluicectl [--brain URL] certs revoked     list revoked hosts
  sluicectl [--brain URL] certs whoami      the identity the brain sees

Credentials for an https brain: SLUICE_CERTS=DIR (with SLUICE_IDENTITY=NAME,
default admin), or SLUICE_TLS_CERT, SLUICE_TLS_KEY and SLUICE_CA.
`

// clientFiles are the TLS files named by the environment; none set is a
// plain-text (loopback) client.
func clientFiles(getenv func(string) string) (auth.ClientFiles, error) {
	f := auth.ClientFiles{Cert: getenv(envCert), Key: getenv(envKey), CA: getenv(envCA)}
	dir := getenv(envCertDir)
	if dir == "" {
		if !f.Empty() && (f.Cert == "" || f.Key == "" || f.CA == "") {
			return f, fmt.Errorf("%s, %s and %s go together", envCert, envKey, envCA)
		}
		return f, nil
	}
	if !f.Empty() {
		return f, fmt.Errorf("%s with %s, %s or %s: choose one", envCertDir, envCert, envKey, envCA)
	}
	id := getenv(envIdentity)
	if id == "" {
		id = "admin"
	}
	return auth.ClientFiles{Cert: auth.CertFile(dir, id), Key: auth.KeyFile(dir, id), CA: filepath.Join(dir, auth.CACertFile)}, nil
}

// brainHTTPClient is how every brain command reaches the brains in list
// (--brain, comma-separated): mutual TLS with the environment's credential
// for https, plain text to loopback for http (auth.HTTPClient checks every
// URL).
func brainHTTPClient(list string, getenv func(string) string) (*http.Client, []string, error) {
	parsed, err := auth.BrainURLs(list)
	if err != nil {
		return nil, nil, fmt.Errorf("--brain: %w", err)
	}
	f, err := clientFiles(getenv)
	if err != nil {
		return nil, nil, err
	}
	hc, err := auth.HTTPClient(list, f, nil)
	if err != nil {
		return nil, nil, err
	}
	hc.Timeout = 5 * time.Minute
	urls := make([]string, len(parsed))
	for i, u := range parsed {
		urls[i] = u.String()
	}
	return hc, urls, nil
}

// eachBrain asks the brains in turn until one answers something other
// than Unavailable: any brain forwards to the leader, and one that is
// down or between leaders answers Unavailable (or not at all). Every
// brain call is safe to repeat (submissions are idempotent by job name).
func eachBrain(urls []string, call func(url string) error) error {
	var err error
	for _, u := range urls {
		if err = call(u); connect.CodeOf(err) != connect.CodeUnavailable {
			return err
		}
	}
	return err
}

func runCerts(ctx context.Context, brainURL string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "init":
		err = certsInit(args[1:], stdout, stderr)
	case "issue":
		err = certsIssue(args[1:], getenv, stdout, stderr)
	case "revoke", "revoked", "whoami":
		err = certsRemote(ctx, brainURL, args[0], args[1:], getenv, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, certsUsage)
		return 0
	default:
		err = usagef("unknown certs command %q", args[0])
	}
	var usageErr usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "sluicectl certs: %v\n%s", err, certsUsage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "sluicectl certs %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// parseInterspersed parses fs's flags wherever they stand among the
// positional arguments (certs init DIR -san x).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func certsInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	san := fs.String("san", "", "extra DNS names and IP addresses of the brain's certificate, comma-separated")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	dir, err := oneArg(pos, "DIR")
	if err != nil {
		return err
	}
	now := time.Now()
	ca, err := auth.InitDir(dir, now)
	if err != nil {
		return err
	}
	if err := ca.IssueFiles(dir, now, map[string]auth.Request{
		"brain": {Kind: auth.KindBrain, Name: "brain", SANs: splitList(*san)},
		"admin": {Kind: auth.KindOperator, Name: "admin", Scope: auth.ScopeAdmin},
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster CA      %s (key %s: keep it off the brain and the hosts)\n", filepath.Join(dir, auth.CACertFile), filepath.Join(dir, auth.CAKeyFile))
	fmt.Fprintf(stdout, "brain           %s %s\n", auth.CertFile(dir, "brain"), auth.KeyFile(dir, "brain"))
	fmt.Fprintf(stdout, "operator admin  %s %s (SLUICE_CERTS=%s)\n", auth.CertFile(dir, "admin"), auth.KeyFile(dir, "admin"), dir)
	return nil
}

func certsIssue(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", getenv(envCertDir), "certificate directory holding the CA (default $SLUICE_CERTS)")
	scope := fs.String("scope", "", "issue an operator credential of this scope: read, submit or admin")
	brain := fs.Bool("brain", false, "issue a brain's serving certificate")
	san := fs.String("san", "", "a brain certificate's extra DNS names and IP addresses, comma-separated")
	valid := fs.Duration("valid", auth.DefaultValidity, "how long the certificate is valid")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	name, err := oneArg(pos, "NAME")
	if err != nil {
		return err
	}
	if *dir == "" {
		return usagef("no certificate directory: pass -dir or set %s", envCertDir)
	}
	r := auth.Request{Kind: auth.KindHost, Name: name}
	switch {
	case *brain && *scope != "":
		return usagef("-brain and -scope: choose one")
	case *brain:
		r.Kind, r.SANs = auth.KindBrain, splitList(*san)
	case *scope != "":
		s, err := auth.ParseScope(*scope)
		if err != nil {
			return usagef("-scope: %v", err)
		}
		r.Kind, r.Scope = auth.KindOperator, s
	}
	if *san != "" && !*brain {
		return usagef("-san is for -brain certificates")
	}
	ca, err := auth.LoadCA(*dir)
	if err != nil {
		return err
	}
	now := time.Now()
	r.NotBefore, r.NotAfter = now, now.Add(*valid)
	is, err := ca.Issue(r, now)
	if err != nil {
		return err
	}
	if err := is.Write(*dir, name); err != nil {
		return err
	}
	id, _ := auth.IdentityOf(is.Cert)
	fmt.Fprintf(stdout, "%s: %s %s, serial %x, valid until %s\n", id, auth.CertFile(*dir, name), auth.KeyFile(*dir, name),
		is.Cert.SerialNumber, is.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func certsRemote(ctx context.Context, url, cmd string, args []string, getenv func(string) string, stdout io.Writer) error {
	hc, urls, err := brainHTTPClient(url, getenv)
	if err != nil {
		return err
	}
	// Revocations and whoami go to the first brain; a follower forwards.
	c := brainv1connect.NewAccessServiceClient(hc, urls[0])
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch cmd {
	case "revoke":
		host, err := oneArg(args, "HOST")
		if err != nil {
			return err
		}
		r, err := c.RevokeHost(ctx, connect.NewRequest(&brainv1.RevokeHostRequest{Name: host}))
		if err != nil {
			return err
		}
		printRevocations(tw, []*brainv1.Revocation{r.Msg.GetRevocation()})
	case "revoked":
		if len(args) != 0 {
			return usagef("certs revoked takes no arguments")
		}
		r, err := c.ListRevocations(ctx, connect.NewRequest(&brainv1.ListRevocationsRequest{}))
		if err != nil {
			return err
		}
		printRevocations(tw, r.Msg.GetRevocations())
	case "whoami":
		r, err := c.WhoAmI(ctx, connect.NewRequest(&brainv1.WhoAmIRequest{}))
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "KIND\tNAME\tSCOPE\n%s\t%s\t%s\n", r.Msg.GetKind(), r.Msg.GetName(), r.Msg.GetScope())
	}
	return nil
}

func printRevocations(w io.Writer, rs []*brainv1.Revocation) {
	fmt.Fprintln(w, "HOST\tREFUSED IF ISSUED UP TO\tBY")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.GetHost(), time.UnixMilli(r.GetCutoffUnixMs()).UTC().Format(time.RFC3339), r.GetBy())
	}
}
