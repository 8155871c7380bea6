package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mcpstream/mcpstream/auth"
)

const apiKeyUsage = `Usage of apikey:
  mcpstream apikey create --file F --principal P [--scope S ...]
        make a key for P, add its hash to F and print the key, once, on stdout
  mcpstream apikey revoke --file F (--principal P | --hash H | --key-stdin)
        remove the matching keys from F; gateways following F refuse them within about a second
  mcpstream apikey list --file F
        print each key's principal, hash prefix and scopes (never a key)

F is the gateway's --api-keys file. Run "mcpstream apikey <subcommand> -h" for its flags.
`

// runAPIKey runs `mcpstream apikey create|revoke|list`, on the key file a
// gateway's --api-keys names (the format of auth.ParseAPIKeys). stdin
// gives the key of revoke --key-stdin. It returns flag.ErrHelp after
// printing a usage asked for, or an error for no or an unknown
// subcommand, or the subcommand's.
func runAPIKey(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apiKeyUsage)
		return errors.New("name a subcommand: create, revoke or list")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, apiKeyUsage)
		return flag.ErrHelp
	case "create":
		return apiKeyCreate(ctx, args[1:], stdout, stderr)
	case "revoke":
		return apiKeyRevoke(ctx, args[1:], stdin, stdout, stderr)
	case "list":
		return apiKeyList(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q (have create, revoke, list)", args[0])
}

// apiKeyCreate makes a key for a principal, adds its line to the file
// (made if missing) and prints the key on stdout, the only place it ever
// appears. It returns an error for a missing or invalid principal or
// scope, a file that does not parse, or one that cannot be written.
func apiKeyCreate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "key file (the gateway's --api-keys); made, mode 0600, if missing")
	principal := fs.String("principal", "", "principal the key names: no spaces, not starting with #")
	var scopes listFlag
	fs.Var(&scopes, "scope", "scope the key grants (repeatable or comma-separated); a gateway's --api-key-scopes must all be granted")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	if *principal == "" {
		return errors.New("--principal is required")
	}
	if err := auth.CheckPrincipal(*principal); err != nil {
		return fmt.Errorf("--principal: %w", err)
	}
	for _, s := range scopes {
		if err := auth.CheckScope(s); err != nil {
			return fmt.Errorf("--scope %q: %w", s, err)
		}
	}
	key := auth.GenerateAPIKey()
	k := auth.APIKey{Principal: *principal, Hash: auth.HashAPIKey(key), Scopes: scopes}
	err := editKeyFile(*file, true, func(lines []keyLine) ([]keyLine, error) {
		return append(lines, keyLine{text: k.String(), key: k, isKey: true}), nil
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, key); err != nil {
		return fmt.Errorf("printing the key: %w (it was added to %s: revoke it with --hash %s)", err, *file, k.ShortHash())
	}
	fmt.Fprintf(stderr, "mcpstream apikey: added key %s of %s%s to %s; the key above is not kept anywhere: store it now\n",
		k.ShortHash(), k.Principal, scopeNote(k.Scopes), *file)
	return nil
}

// apiKeyRevoke removes the keys of a principal, the key whose hash starts
// with a prefix, or the key read from stdin. It returns an error when not
// exactly one of them is given, when nothing matches (the file is left as
// it was), for a hash prefix matching several keys, or a file that does not
// parse or cannot be written.
func apiKeyRevoke(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "key file (the gateway's --api-keys)")
	principal := fs.String("principal", "", "revoke every key of this principal")
	hash := fs.String("hash", "", "revoke the key whose hex SHA-256 starts with this (at least 8 digits; list prints 12)")
	keyStdin := fs.Bool("key-stdin", false, "revoke the key read from stdin (its first line)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	given := 0
	for _, g := range []bool{*principal != "", *hash != "", *keyStdin} {
		if g {
			given++
		}
	}
	if given != 1 {
		return errors.New("give one of --principal, --hash and --key-stdin")
	}
	var match func(auth.APIKey) bool
	what := ""
	switch {
	case *principal != "":
		match = func(k auth.APIKey) bool { return k.Principal == *principal }
		what = "of principal " + *principal
	case *hash != "":
		prefix := strings.ToLower(*hash)
		if _, err := hex.DecodeString(prefix + strings.Repeat("0", len(prefix)%2)); err != nil || len(prefix) < 8 || len(prefix) > 64 {
			return errors.New("--hash: want 8 to 64 hex digits of a key's SHA-256")
		}
		match = func(k auth.APIKey) bool { return strings.HasPrefix(hex.EncodeToString(k.Hash[:]), prefix) }
		what = "with hash " + prefix
	default:
		line, err := readKeyLine(stdin)
		if err != nil {
			return err
		}
		h := auth.HashAPIKey(line)
		match = func(k auth.APIKey) bool { return k.Hash == h }
		what = "read from stdin"
	}
	var revoked []auth.APIKey
	left := 0
	err := editKeyFile(*file, false, func(lines []keyLine) ([]keyLine, error) {
		var kept []keyLine
		for _, l := range lines {
			if l.isKey && match(l.key) {
				revoked = append(revoked, l.key)
				continue
			}
			if l.isKey {
				left++
			}
			kept = append(kept, l)
		}
		switch {
		case len(revoked) == 0:
			return nil, fmt.Errorf("%s holds no key %s: nothing revoked", *file, what)
		case *hash != "" && len(revoked) > 1:
			return nil, fmt.Errorf("--hash %s matches %d keys: give more digits", *hash, len(revoked))
		}
		return kept, nil
	})
	if err != nil {
		return err
	}
	for _, k := range revoked {
		fmt.Fprintf(stdout, "revoked %s %s%s\n", k.ShortHash(), k.Principal, scopeNote(k.Scopes))
	}
	if left == 0 {
		fmt.Fprintf(stderr, "mcpstream apikey: %s holds no key now: gateways following it refuse every request, and a gateway will not start on it\n", *file)
	}
	return nil
}

// readKeyLine reads a key from r: its first line, without surrounding
// white space. It returns an error for no key or a read error; neither
// quotes what was read.
func readKeyLine(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("reading the key from stdin: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", errors.New("--key-stdin: no key on stdin")
	}
	return line, nil
}

// apiKeyList prints each key's principal, hash prefix and scopes ("-" for
// none), a key a line under a header. It
// returns an error for a file that cannot be read or does not parse.
func apiKeyList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "key file (the gateway's --api-keys)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("reading the key file: %w", err)
	}
	keys, err := auth.ParseAPIKeys(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tHASH\tSCOPES")
	for _, k := range keys {
		scopes := strings.Join(k.Scopes, " ")
		if scopes == "" {
			scopes = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Principal, k.ShortHash(), scopes)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("printing the keys: %w", err)
	}
	return nil
}

func scopeNote(scopes []string) string {
	if len(scopes) == 0 {
		return " (no scope)"
	}
	return " (scopes " + strings.Join(scopes, " ") + ")"
}

// keyLine is a line of a key file as read: a key, or another line (blank,
// a comment) kept as it is.
type keyLine struct {
	text  string
	key   auth.APIKey
	isKey bool
}

// editKeyFile changes the key file at path under a lock that serialises
// it with other runs of mcpstream apikey (so that a create running with a
// revoke cannot bring a revoked key back): it reads the file (none and
// create is an empty file), which must parse as a gateway would, passes
// its lines to edit, and writes what edit returns atomically: to a new
// file of mode 0600 beside it, then renamed over it, so that a gateway
// reading it sees the old file or the new one, never part of one. A
// symbolic link is followed: its target is replaced. It returns edit's
// error, leaving the file as it was, or an error saying what failed.
func editKeyFile(path string, create bool, edit func([]keyLine) ([]keyLine, error)) error {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	unlock, err := lockKeyFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		b = nil
	case err != nil:
		return fmt.Errorf("reading the key file: %w", err)
	}
	if _, err := auth.ParseAPIKeys(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var lines []keyLine
	if len(b) > 0 {
		for _, text := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			k, ok, _ := auth.ParseAPIKeyLine(text) // the file parsed as a whole
			lines = append(lines, keyLine{text: strings.TrimSuffix(text, "\r"), key: k, isKey: ok})
		}
	}
	lines, err = edit(lines)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for _, l := range lines {
		out.WriteString(l.text)
		out.WriteByte('\n')
	}
	return writeFileAtomic(path, out.Bytes())
}

// writeFileAtomic replaces the file at path with data, mode 0600: written
// and synced to a temporary file in the same directory, renamed over path,
// and the directory synced. It returns an error saying which step failed;
// the temporary file is then removed.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing the key file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("writing the key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing the key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing the key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing the key file: %w", err)
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync() // the rename survives a crash; not every system syncs directories
		d.Close()
	}
	return nil
}
