package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// unlimitedV1 is where cgroup v1 values stop being limits: an unlimited
// group reads 9223372036854771712 (the largest page multiple).
const unlimitedV1 = 1 << 62

// CgroupLimit returns the memory limit of this process's cgroup and the
// cgroup version it came from ("cgroup v2" or "cgroup v1"), or 0 when
// there is none. It reads under root ("/" on a running system; a test
// lays out a directory the same way): proc/self/cgroup for the process's
// group, proc/self/mountinfo for where each hierarchy is mounted, then on
// cgroup v2 the memory.max of the group and of each parent up to the
// mount (the smallest one binds), and on v1 the memory controller's
// memory.limit_in_bytes and the hierarchical_memory_limit of memory.stat
// (which counts the parents). On a hybrid system (v2 mounted without the
// memory controller) it takes v1's. It returns an error only for files it
// found but could not read or parse; a system without cgroups has no limit.
func CgroupLimit(root string) (int64, string, error) {
	groups, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	mountinfo, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0, "", fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	mounts := parseMountinfo(mountinfo)
	var v1Path, v2Path string
	var hasV1, hasV2 bool
	for _, line := range strings.Split(string(groups), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2Path, hasV2 = parts[2], true
		case hasController(parts[1], "memory"):
			v1Path, hasV1 = parts[2], true
		}
	}
	if hasV2 {
		if m, ok := findMount(mounts, "cgroup2", ""); ok {
			limit, err := v2Limit(root, m, v2Path)
			if err != nil || limit > 0 {
				return limit, "cgroup v2", err
			}
		}
	}
	if hasV1 {
		if m, ok := findMount(mounts, "cgroup", "memory"); ok {
			limit, err := v1Limit(root, m, v1Path)
			return limit, "cgroup v1", err
		}
	}
	return 0, "", nil
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype string
	options             []string // the super options
}

func parseMountinfo(b []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, v := range f {
			if v == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		out = append(out, mount{root: unescape(f[3]), point: unescape(f[4]), fstype: f[sep+1], options: strings.Split(f[sep+3], ",")})
	}
	return out
}

// unescape undoes mountinfo's octal escapes of spaces and the like (\040).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// findMount finds the first mount of fstype whose super options include
// controller (any, for "").
func findMount(mounts []mount, fstype, controller string) (mount, bool) {
	for _, m := range mounts {
		if m.fstype != fstype {
			continue
		}
		if controller == "" || hasController(strings.Join(m.options, ","), controller) {
			return m, true
		}
	}
	return mount{}, false
}

func hasController(list, c string) bool {
	for _, v := range strings.Split(list, ",") {
		if v == c {
			return true
		}
	}
	return false
}

// groupDir is the directory of the group at path (as /proc/self/cgroup
// names it) under mount m: path relative to the mount's root. A path
// outside it (a cgroup namespace that hides the parents) is the mount
// itself.
func groupDir(root string, m mount, path string) string {
	rel := path
	if m.root != "/" {
		if r, ok := strings.CutPrefix(path, m.root); ok && (r == "" || r[0] == '/') {
			rel = r
		} else {
			rel = "/"
		}
	}
	return filepath.Join(root, m.point, rel)
}

// v2Limit is the smallest memory.max from the group up to the mount.
func v2Limit(root string, m mount, path string) (int64, error) {
	top := filepath.Join(root, m.point)
	var limit int64
	for dir := groupDir(root, m, path); ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "memory.max"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return 0, fmt.Errorf("reading memory.max: %w", err)
		default:
			v := strings.TrimSpace(string(b))
			if v != "max" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: %q is not a size: %w", filepath.Join(dir, "memory.max"), v, err)
				}
				if limit == 0 || n < limit {
					limit = n
				}
			}
		}
		if dir == top || len(dir) <= len(top) {
			return limit, nil
		}
	}
}

// v1Limit is the memory controller's limit of the group, parents counted
// (hierarchical_memory_limit) when memory.stat has it.
func v1Limit(root string, m mount, path string) (int64, error) {
	dir := groupDir(root, m, path)
	var limit int64
	b, err := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("reading memory.limit_in_bytes: %w", err)
	default:
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a size: %w", filepath.Join(dir, "memory.limit_in_bytes"), v, err)
		}
		if n < unlimitedV1 {
			limit = n
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "hierarchical_memory_limit "); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n < unlimitedV1 && (limit == 0 || n < limit) {
					limit = n
				}
			}
		}
	}
	return limit, nil
}
