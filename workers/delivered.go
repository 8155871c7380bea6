package workers

import "strings"

// deliveryCount returns which delivery of its envelope a message is, as
// the server wrote it in the message's acknowledgement subject (reply),
// and reports whether reply is one: what [jetstream.Msg.Metadata] gives
// as NumDelivered, read without the rest of the metadata, its allocation
// and its four other numbers, on the path of every delivery.
// FuzzDeliveryCount compares the two on every input.
//
// An acknowledgement subject has 9 tokens, or 11 and more from servers
// that name the domain and the account:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>[.<token>]
//
// As the library does, a count that is not all digits is 0.
func deliveryCount(reply string) (uint64, bool) {
	if !strings.HasPrefix(reply, "$JS.ACK.") {
		return 0, false
	}
	var first [7]string // the first tokens: the count is the 5th or the 7th
	tokens := 0
	for rest, more := reply, true; more; tokens++ {
		var token string
		token, rest, more = strings.Cut(rest, ".")
		if tokens < len(first) {
			first[tokens] = token
		}
	}
	var count string
	switch {
	case tokens == 9:
		count = first[4]
	case tokens >= 11:
		count = first[6]
	default:
		return 0, false
	}
	var n uint64
	for i := 0; i < len(count); i++ {
		c := count[i]
		if c < '0' || c > '9' {
			return 0, true
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
