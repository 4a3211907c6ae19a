// Package certs gives the webhook its serving certificate in --cert-mode=self: a CA and a serving
// certificate kept in a Secret shared by every replica, rotated before they expire, written to the
// directory controller-runtime's webhook server watches (it reloads them without a restart), with
// the CA patched into the MutatingWebhookConfiguration's caBundle.
package certs
