//go:build tools

// Package tools pins stripe-mock, Stripe's official mock of its API, for
// procon's contract test: it validates every request against the OpenAPI
// spec it embeds, so the Stripe driver's requests are checked by Stripe's
// own schema rather than by procon's emulator. The same spec is the source
// of the emulator's lists of webhook API versions and event types.
// Built and cached by procon.emulators.stripe.stripe_mock.ensure_stripe_mock.
package tools

import (
	_ "github.com/stripe/stripe-mock"
)
