package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"", Spec{}},
		{"off", Spec{Set: true, Off: true}},
		{"0", Spec{Set: true, Off: true}},
		{"400MiB", Spec{Set: true, Bytes: 400 << 20}},
		{"1.5GiB", Spec{Set: true, Bytes: 3 << 29}},
		{"512MB", Spec{Set: true, Bytes: 512e6}},
		{"1048576", Spec{Set: true, Bytes: 1 << 20}},
		{"2048B", Spec{Set: true, Bytes: 2048}},
		{" 64 KiB ", Spec{Set: true, Bytes: 64 << 10}},
		{"75%", Spec{Set: true, Percent: 75}},
	} {
		got, err := ParseSpec(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if c.in != "" && c.want.Bytes > 0 {
			// String reads back as the same limit.
			if again, err := ParseSpec(got.String()); err != nil || again != got {
				t.Errorf("ParseSpec(%q).String() = %q reads as %+v, %v", c.in, got.String(), again, err)
			}
		}
	}
	for _, bad := range []string{"lots", "-1MiB", "0%", "101%", "x%", "12XB", "1e30GiB", "NaN"} {
		if s, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) = %+v, no error", bad, s)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for b, want := range map[int64]string{400 << 20: "400MiB", 2 << 30: "2GiB", 1536: "1536B", 3 << 10: "3KiB", 7: "7B"} {
		if got := FormatBytes(b); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", b, got, want)
		}
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func cgroup(limit int64, version string) func() (int64, string, error) {
	return func() (int64, string, error) { return limit, version, nil }
}

func TestChoose(t *testing.T) {
	gib := int64(1 << 30)
	for _, c := range []struct {
		name     string
		spec     string
		fallback int64
		env      Env
		want     Limit
	}{
		{"flag wins over everything", "300MiB", 400 << 20, Env{Lookup: lookup(map[string]string{"GOMEMLIMIT": "1GiB"}), Cgroup: cgroup(gib, "cgroup v2")},
			Limit{Bytes: 300 << 20, Source: "--memory-limit", Container: gib}},
		{"off wins over everything", "off", 400 << 20, Env{Lookup: lookup(map[string]string{"GOMEMLIMIT": "1GiB"}), Cgroup: cgroup(gib, "cgroup v2")},
			Limit{Source: "--memory-limit", Container: gib}},
		{"a share of the container", "50%", 0, Env{Cgroup: cgroup(gib, "cgroup v1")},
			Limit{Bytes: gib / 2, Source: "--memory-limit", Container: gib}},
		{"container by default", "", 400 << 20, Env{Lookup: lookup(nil), Cgroup: cgroup(gib, "cgroup v1")},
			Limit{Bytes: int64(float64(gib) * DefaultContainerShare), Source: "cgroup v1", Container: gib}},
		{"the command's default without a container", "", 400 << 20, Env{Lookup: lookup(nil), Cgroup: cgroup(0, "")},
			Limit{Bytes: 400 << 20, Source: "default"}},
		{"none at all", "", 0, Env{Lookup: lookup(map[string]string{"GOMEMLIMIT": " "}), Cgroup: cgroup(0, "")},
			Limit{Source: "none"}},
	} {
		spec, err := ParseSpec(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Choose(spec, c.fallback, c.env)
		if err != nil || got != c.want {
			t.Errorf("%s: Choose = %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	// GOMEMLIMIT set: the runtime's own value stands.
	prev := debug.SetMemoryLimit(123 << 20)
	defer debug.SetMemoryLimit(prev)
	got, err := Choose(Spec{}, 400<<20, Env{Lookup: lookup(map[string]string{"GOMEMLIMIT": "123MiB"}), Cgroup: cgroup(gib, "cgroup v2")})
	if err != nil || got.Source != "GOMEMLIMIT" || got.Bytes != 123<<20 {
		t.Errorf("with GOMEMLIMIT: Choose = %+v, %v; want 123MiB from GOMEMLIMIT", got, err)
	}
	// A percentage needs a container limit.
	if _, err := Choose(Spec{Set: true, Percent: 80}, 0, Env{Cgroup: cgroup(0, "")}); err == nil || !strings.Contains(err.Error(), "no container memory limit") {
		t.Errorf("80%% without a container: err %v", err)
	}
}

func TestApply(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	if got := Apply(Limit{Bytes: 300 << 20, Source: "--memory-limit"}); got != 300<<20 {
		t.Errorf("Apply(300MiB) = %d", got)
	}
	if v := debug.SetMemoryLimit(-1); v != 300<<20 {
		t.Errorf("runtime limit after Apply = %d, want %d", v, 300<<20)
	}
	// GOMEMLIMIT's value is the runtime's: Apply leaves it.
	if got := Apply(Limit{Bytes: 1, Source: "GOMEMLIMIT"}); got != 300<<20 {
		t.Errorf("Apply(from GOMEMLIMIT) = %d, want the runtime's %d", got, 300<<20)
	}
	if got := Apply(Limit{Source: "none"}); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("Apply(none) = %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
}

// fakeRoot lays out files under a temp dir as they sit under /.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mountsV2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n" +
		"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
	// A hybrid system: v2 mounted without controllers, v1 memory beside it.
	mountsHybrid = "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)

func TestCgroupLimit(t *testing.T) {
	for _, c := range []struct {
		name        string
		files       map[string]string
		want        int64
		wantVersion string
	}{
		{"v2 in a container (cgroup namespace)", map[string]string{
			"proc/self/cgroup":           "0::/\n",
			"proc/self/mountinfo":        mountsV2,
			"sys/fs/cgroup/memory.max":   "536870912\n",
			"sys/fs/cgroup/memory.stat":  "anon 0\n",
			"sys/fs/cgroup/cgroup.procs": "1\n",
		}, 512 << 20, "cgroup v2"},
		{"v2 nested: a parent's smaller limit binds", map[string]string{
			"proc/self/cgroup":                              "0::/kubepods/pod1/ctr\n",
			"proc/self/mountinfo":                           mountsV2,
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max":    "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":        "268435456\n",
			"sys/fs/cgroup/kubepods/memory.max":             "1073741824\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.events": "",
		}, 256 << 20, "cgroup v2"},
		{"v2 without a limit", map[string]string{
			"proc/self/cgroup":                    "0::/user.slice\n",
			"proc/self/mountinfo":                 mountsV2,
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
		}, 0, ""},
		{"v1 on a hybrid system", map[string]string{
			"proc/self/cgroup":    "4:memory:/process_api/abc\n1:cpu:/\n0::/\n",
			"proc/self/mountinfo": mountsHybrid,
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "1073741824\n",
			"sys/fs/cgroup/memory/process_api/abc/memory.stat":           "cache 0\nhierarchical_memory_limit 805306368\n",
		}, 768 << 20, "cgroup v1"},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":    "4:memory:/process_api/abc\n0::/\n",
			"proc/self/mountinfo": mountsHybrid,
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/process_api/abc/memory.stat":           "hierarchical_memory_limit 9223372036854771712\n",
		}, 0, ""},
		{"v1 in a container whose mount root is its group", map[string]string{
			"proc/self/cgroup":                           "9:memory,foo:/docker/123\n",
			"proc/self/mountinfo":                        "50 40 0:44 /docker/123 /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory,foo\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n",
		}, 2 << 30, "cgroup v1"},
		{"no cgroups at all", map[string]string{}, 0, ""},
	} {
		root := fakeRoot(t, c.files)
		got, version, err := CgroupLimit(root)
		if err != nil || got != c.want || (c.want > 0 && version != c.wantVersion) {
			t.Errorf("%s: CgroupLimit = %d, %q, %v; want %d, %q", c.name, got, version, err, c.want, c.wantVersion)
		}
	}
	// A limit file that says nonsense is an error, not no limit.
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"proc/self/mountinfo":      mountsV2,
		"sys/fs/cgroup/memory.max": "lots\n",
	})
	if _, _, err := CgroupLimit(root); err == nil {
		t.Error("memory.max \"lots\": no error")
	}
	// This machine's own, whatever it is, reads without error.
	if _, _, err := CgroupLimit("/"); err != nil {
		t.Errorf("CgroupLimit(/): %v", err)
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/mnt/with\040space`); got != "/mnt/with space" {
		t.Errorf("unescape = %q", got)
	}
	if got := unescape(`/plain\`); got != `/plain\` {
		t.Errorf("unescape of a trailing backslash = %q", got)
	}
}
