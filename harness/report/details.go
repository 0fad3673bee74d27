package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Detail is one named measurement of a check ("rtt_ms" = "0.06").
type Detail struct {
	Key   string
	Value string
}

// Details are a check's measurements in the order the check produced them.
// In JSON they are an object ({"rtt_ms": "0.06", ...}) whose keys keep that
// order, which a Go map would lose; a nil Details is the empty object.
type Details []Detail

// Set sets key to value, in place when key is present, appended otherwise.
func (d *Details) Set(key, value string) {
	for i := range *d {
		if (*d)[i].Key == key {
			(*d)[i].Value = value
			return
		}
	}
	*d = append(*d, Detail{Key: key, Value: value})
}

// Get returns the value of key and whether it is present.
func (d Details) Get(key string) (string, bool) {
	for _, kv := range d {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// MarshalJSON encodes d as a JSON object with its keys in order.
func (d Details) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSONString(&b, kv.Key); err != nil {
			return nil, fmt.Errorf("details key %q: %w", kv.Key, err)
		}
		b.WriteByte(':')
		if err := writeJSONString(&b, kv.Value); err != nil {
			return nil, fmt.Errorf("details %q value: %w", kv.Key, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeJSONString appends s as a JSON string. HTML escaping is off, as in
// WriteJSON, so "10.0.0.2 -> 10.0.0.3" stays readable in the file
// (json.Marshal re-escapes it anyway; WriteJSON's encoder does not).
func writeJSONString(b *bytes.Buffer, s string) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline.
	return nil
}

// errDetailsNotObject is returned by UnmarshalJSON for anything but an
// object or null.
var errDetailsNotObject = errors.New("details must be a JSON object")

// UnmarshalJSON decodes a JSON object into d, keeping the document's key
// order. String values are taken as they are; numbers and booleans keep
// their JSON text, so a report written by another tool still reads back.
// A repeated key keeps its first position and its last value.
func (d *Details) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("details: %w", err)
	}
	if tok == nil { // null
		*d = nil
		return nil
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return errDetailsNotObject
	}
	out := Details{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("details: %w", err)
		}
		key := tok.(string) // inside an object, keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("details %q: %w", key, err)
		}
		value, err := scalarText(raw)
		if err != nil {
			return fmt.Errorf("details %q: %w", key, err)
		}
		out.Set(key, value)
	}
	*d = out
	return nil
}

// scalarText returns a JSON string's value, or the text of a number or
// boolean.
func scalarText(raw json.RawMessage) (string, error) {
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[', 'n':
		return "", fmt.Errorf("value %s is not a string, number or boolean", raw)
	}
	return string(raw), nil
}
