package main

import "time"

// certValidity is the serving certificate's lifetime in --cert-mode=self; it is renewed after two
// thirds, and its CA lives four times as long.
const certValidity = 90 * 24 * time.Hour
