package simrig

import (
	"fmt"
	"strings"
)

// Action is one thing the bench can be told to do.
type Action string

// The actions of `agent sim -dir DIR <action>`.
const (
	SignIn         Action = "signin"          // the meter signs the next driver in
	SignOut        Action = "signout"         // the meter signs the driver out
	EndpointDown   Action = "endpoint down"   // the fake endpoint refuses connections
	EndpointUp     Action = "endpoint up"     // it serves again, on the same address
	EndpointReject Action = "endpoint reject" // it answers the next valid punch 400 PARAM_ERROR
)

// Actions lists every action, in the order usage shows them.
var Actions = []Action{SignIn, SignOut, EndpointDown, EndpointUp, EndpointReject}

// ParseAction reads an action from command-line words, such as
// ["endpoint", "down"]. It fails with ErrUnknownAction naming the words.
func ParseAction(words []string) (Action, error) {
	a := Action(strings.Join(words, " "))
	for _, known := range Actions {
		if a == known {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownAction, string(a), actionList())
}

func actionList() string {
	s := make([]string, len(Actions))
	for i, a := range Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
