package examples_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/workers/examples"
)

func TestNames(t *testing.T) {
	names := examples.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "demo") {
		t.Errorf("Names() = %v, want sorted and containing demo", names)
	}
}

func TestParse(t *testing.T) {
	for _, none := range []string{"", " ", "0", "none"} {
		gs, err := examples.Parse(none)
		if err != nil || gs != nil {
			t.Errorf("Parse(%q) = %v, %v; want none", none, gs, err)
		}
	}
	gs, err := examples.Parse(" demo, ,demo ")
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Name() != "demo" {
		t.Errorf("Parse(demo,demo) = %d groups, want one demo", len(gs))
	}
	if _, err := examples.Parse("demo,nope"); err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "demo") {
		t.Errorf("Parse with an unknown name: %v, want an error naming it and the known ones", err)
	}
}

func TestDemoTools(t *testing.T) {
	g := examples.Demo()
	if g.Name() != "demo" {
		t.Errorf("Demo().Name() = %q", g.Name())
	}
	if got, want := g.Tools(), []string{"add", "echo", "increment", "sleep"}; !slices.Equal(got, want) {
		t.Errorf("Demo().Tools() = %v, want %v", got, want)
	}
	// Each call builds a fresh group.
	if examples.Demo() == g {
		t.Error("Demo returned the same group twice")
	}
}

func TestConformanceGroup(t *testing.T) {
	gs, err := examples.Parse("conformance")
	if err != nil || len(gs) != 1 || gs[0].Name() != "conformance" {
		t.Fatalf("Parse(conformance) = %v, %v", gs, err)
	}
	want := []string{"confirm_delete", "failing_job", "greet", "json_schema_2020_12_tool", "multi_input",
		"protocol_error_job", "slow_compute", "test_audio_content", "test_elicitation", "test_elicitation_sep1034_defaults",
		"test_elicitation_sep1330_enums", "test_embedded_resource", "test_error_handling", "test_image_content",
		"test_input_required_result_capabilities", "test_input_required_result_elicitation",
		"test_input_required_result_list_roots", "test_input_required_result_multi_round",
		"test_input_required_result_multiple_inputs", "test_input_required_result_request_state",
		"test_input_required_result_sampling", "test_input_required_result_tampered_state", "test_logging_tool",
		"test_missing_capability", "test_multiple_content_types", "test_sampling", "test_simple_text",
		"test_streaming_elicitation", "test_tool_with_logging", "test_tool_with_progress", "test_tool_with_task",
		"test_trigger_prompt_change", "test_trigger_tool_change", "test_x_mcp_header"}
	if got := gs[0].Tools(); !slices.Equal(got, want) {
		t.Fatalf("conformance tools = %v, want %v", got, want)
	}
}
