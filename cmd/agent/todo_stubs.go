package main

import (
	"context"
	"errors"
	"io"
)

var errNotYet = errors.New("not built yet")

func cmdRun(context.Context, []string, io.Writer, io.Writer) error    { return errNotYet }
func cmdDemo(context.Context, []string, io.Writer, io.Writer) error   { return errNotYet }
func cmdStatus(context.Context, []string, io.Writer, io.Writer) error { return errNotYet }
func cmdOutbox(context.Context, []string, io.Writer, io.Writer) error { return errNotYet }
func cmdMeter(context.Context, []string, io.Writer, io.Writer) error  { return errNotYet }
