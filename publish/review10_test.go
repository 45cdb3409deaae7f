package publish

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// TestSpecJSONReview10Values: values built directly (not only what JSON
// decodes to) held to protojson.Marshal and CanonicalJSON: numbers at the
// edges of the two formats, every control character, the characters
// encoding/json escapes or not, keys that sort by bytes, nesting at the
// limit through lists and structs mixed, Values of no kind deep inside.
func TestSpecJSONReview10Values(t *testing.T) {
	num := structpb.NewNumberValue
	str := structpb.NewStringValue
	list := func(vs ...*structpb.Value) *structpb.Value {
		return structpb.NewListValue(&structpb.ListValue{Values: vs})
	}
	obj := func(kv ...any) *structpb.Value {
		s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
		for i := 0; i < len(kv); i += 2 {
			s.Fields[kv[i].(string)] = kv[i+1].(*structpb.Value)
		}
		return structpb.NewStructValue(s)
	}
	var nums []*structpb.Value
	for _, f := range []float64{
		math.Copysign(0, -1), 0, 1e-6, math.Nextafter(1e-6, 0), math.Nextafter(1e-6, 1), -1e-6, 1e-7, 1.5e-7, 1e-10, 1e-100,
		1e21, math.Nextafter(1e21, 0), -1e21, 1e20, 1e22, 1e100, 1e300, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
		1 << 53, 1<<53 + 2, 0.1, 0.2 + 0.1, 1.0 / 3, 123456789.123456789, 5e-324,
	} {
		nums = append(nums, num(f))
	}
	var ctl strings.Builder
	for c := 0; c < 0x80; c++ {
		ctl.WriteByte(byte(c))
	}
	values := []*structpb.Value{
		list(nums...),
		str(ctl.String()),
		str("\u2028\u2029\u2027\u202a\ufffd\ufeff\U0010ffff<>&\u00a0"),
		str("\xed\xa0\x80"), str("a\xc0\xafb"), str("\xff"), str("ok\xe2\x80"),
		obj("\xff", str("x")),
		obj("b", num(1), "a", num(2), "B", num(3), "", num(4), "é", num(5), "z", num(6), "\u2028", num(7), "\x00", num(8), "a\x00", num(9), "\U0001f600", num(10), "\uffff", num(11)),
		obj("k", list(obj("n", structpb.NewNullValue(), "t", structpb.NewBoolValue(true), "f", structpb.NewBoolValue(false)))),
		obj("a", &structpb.Value{Kind: &structpb.Value_NullValue{NullValue: 7}}),
		obj("a", &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{}}}),
		obj("a", &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{}}}),
		obj("a", num(math.Inf(1))), obj("a", num(math.NaN())), list(num(math.Inf(-1))),
		obj("a", &structpb.Value{}),
		obj("a", obj("b", list(&structpb.Value{}))),
		{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: map[string]*structpb.Value{"a": nil}}}},
	}
	// Nesting at CanonicalJSON's limit, lists and structs alternating.
	for _, n := range []int{62, 63, 64, 65, 66} {
		v := str("leaf")
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				v = list(v)
			} else {
				v = obj("k", v)
			}
		}
		values = append(values, v)
		e := obj("k", list())
		for i := 1; i < n; i++ {
			e = list(e)
		}
		values = append(values, e)
	}
	for _, v := range values {
		checkSpecDifferential(t, v)
	}
}
