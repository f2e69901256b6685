package uploader

import "encoding/json"

// wechatError is WeChat Pay's error body: {"code","message","detail"}.
type wechatError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorBody parses an error answer's body; a body that is not one gives
// empty fields.
func errorBody(b []byte) wechatError {
	var e wechatError
	_ = json.Unmarshal(b, &e)
	return e
}
