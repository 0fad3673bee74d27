package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDetailsMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   Details
		want string
	}{
		{"nil is the empty object", nil, `{}`},
		{"empty", Details{}, `{}`},
		{"keeps order", details("sent", "3", "received", "2", "loss", "33%"), `{"sent":"3","received":"2","loss":"33%"}`},
		{"reverse order stays reversed", details("z", "1", "a", "2"), `{"z":"1","a":"2"}`},
		{"no HTML escaping", details("path", "a -> b <c> & d"), `{"path":"a -> b <c> & d"}`},
		{"quotes and control characters escaped", details("err", "say \"hi\"\n\x01"), `{"err":"say \"hi\"\n\u0001"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encodeAsWriteJSON(t, tt.in); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			// Inside a struct field too, where encoding/json decides
			// whether to call MarshalJSON on a nil slice.
			wrapped := encodeAsWriteJSON(t, struct {
				D Details `json:"d"`
			}{tt.in})
			if want := `{"d":` + tt.want + `}`; wrapped != want {
				t.Errorf("in a struct: got %s, want %s", wrapped, want)
			}
		})
	}
}

// encodeAsWriteJSON encodes v with HTML escaping off, as WriteJSON does
// (json.Marshal would re-escape MarshalJSON's output).
func encodeAsWriteJSON(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestDetailsUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Details
		wantErr bool
	}{
		{"object keeps document order", `{"b":"1","a":"2","c":"3"}`, details("b", "1", "a", "2", "c", "3"), false},
		{"empty object", `{}`, Details{}, false},
		{"null", `null`, nil, false},
		{"numbers and booleans keep their text", `{"rtt_ms":0.060,"ok":true}`, details("rtt_ms", "0.060", "ok", "true"), false},
		{"repeated key: first place, last value", `{"a":"1","b":"2","a":"3"}`, details("a", "3", "b", "2"), false},
		{"escaped string", `{"k":"a\u003eb\n"}`, details("k", "a>b\n"), false},
		{"array is refused", `["a"]`, nil, true},
		{"string is refused", `"a"`, nil, true},
		{"nested object is refused", `{"a":{"b":"c"}}`, nil, true},
		{"null value is refused", `{"a":null}`, nil, true},
		{"truncated", `{"a":`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Details
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDetailsSetGet(t *testing.T) {
	var d Details
	d.Set("sent", "1")
	d.Set("received", "0")
	d.Set("sent", "2")
	if want := details("sent", "2", "received", "0"); !reflect.DeepEqual(d, want) {
		t.Fatalf("after Set: %#v, want %#v", d, want)
	}
	if v, ok := d.Get("sent"); !ok || v != "2" {
		t.Errorf(`Get("sent") = %q, %v; want "2", true`, v, ok)
	}
	if v, ok := d.Get("rtt_ms"); ok || v != "" {
		t.Errorf(`Get("rtt_ms") = %q, %v; want "", false`, v, ok)
	}
}
