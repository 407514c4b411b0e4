package apiserver

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/ecsd/ecsd/api/ecs"
)

// FuzzDecodeInput feeds arbitrary bytes to every operation's input decoding and
// validation: whatever a client sends, the answer is a typed client error or a
// valid input, never a panic (which would be a 500 the client retries).
//
//	go test -fuzz FuzzDecodeInput -fuzztime 20s ./apiserver/
func FuzzDecodeInput(f *testing.F) {
	names := fuzzOpNames()
	for i, name := range names {
		f.Add(uint8(i), []byte(`{}`))
		// A fully populated input names every member, so mutations reach the
		// nested validators rather than stopping at the top level.
		if b, err := json.Marshal(fuzzFill(reflect.ValueOf(ecs.Operations[name].NewInput()).Elem().Type(), 0)); err == nil {
			f.Add(uint8(i), b)
		}
	}
	for _, s := range []string{``, `null`, `[]`, `"x"`, `{"a":`, `{} {}`, `{}}`, `{"tags":[{"key":"aws:x","value":1}]}`,
		`{"maxResults":1e999}`, `{"createdAt":"2026-01-01T00:00:00Z"}`, `{"createdAt":-1e300}`, "{\"family\":\"\xff\xfe\"}"} {
		f.Add(uint8(0), []byte(s))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, data []byte) {
		name := names[int(opIndex)%len(names)]
		in := ecs.Operations[name].NewInput()
		if err := decodeInput(data, in); err != nil {
			var e *ecs.Error
			if !errors.As(err, &e) || e.Code != ecs.CodeSerialization {
				t.Fatalf("%s: decode error is not a SerializationException: %#v", name, err)
			}
			return
		}
		v, ok := in.(ecs.Validatable)
		if !ok {
			t.Fatalf("%s: input %T has no Validate", name, in)
		}
		if err := v.Validate(); err != nil {
			var e *ecs.Error
			if !errors.As(err, &e) || e.Code != ecs.CodeInvalidParameter || e.Message == "" {
				t.Fatalf("%s: validation error is not an InvalidParameterException: %#v", name, err)
			}
		}
	})
}

func fuzzOpNames() []string {
	var names []string
	for name := range ecs.Operations {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// fuzzFill returns a value of type t with every exported member set (strings to
// "x", numbers to 1, one element per list and map), to a bounded depth.
func fuzzFill(t reflect.Type, depth int) any {
	return fuzzValue(t, depth).Interface()
}

func fuzzValue(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	if depth > 6 {
		return v
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(fuzzValue(t.Elem(), depth+1).Addr())
	case reflect.Slice:
		s := reflect.MakeSlice(t, 1, 1)
		s.Index(0).Set(fuzzValue(t.Elem(), depth+1))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(t)
		m.SetMapIndex(fuzzValue(t.Key(), depth+1), fuzzValue(t.Elem(), depth+1))
		v.Set(m)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				v.Field(i).Set(fuzzValue(f.Type, depth+1))
			}
		}
	}
	return v
}
