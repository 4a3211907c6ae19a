package inject

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Annotations a pod may carry. Any other key under the crawlpolite.io/ prefix is refused, so a
// misspelt override is an error rather than silently ignored.
const (
	prefix             = "crawlpolite.io/"
	AnnotationImage    = prefix + "proxy-image"
	AnnotationCPU      = prefix + "proxy-cpu"          // request
	AnnotationMemory   = prefix + "proxy-memory"       // request
	AnnotationCPULimit = prefix + "proxy-cpu-limit"    //
	AnnotationMemLimit = prefix + "proxy-memory-limit" //
	AnnotationLogLevel = prefix + "log-level"          // debug | info | warn | error
	AnnotationMode     = prefix + "mode"               // auto | native | legacy
	AnnotationNoProxy  = prefix + "no-proxy"           // extra NO_PROXY entries, comma-separated
	AnnotationExclude  = prefix + "exclude-containers" // containers left alone, comma-separated
	AnnotationStatus   = prefix + "status"             // written by the injector: what it did
	AnnotationSkipped  = prefix + "skipped"            // written by the injector: why it did not
)

var knownAnnotations = []string{AnnotationImage, AnnotationCPU, AnnotationMemory, AnnotationCPULimit,
	AnnotationMemLimit, AnnotationLogLevel, AnnotationMode, AnnotationNoProxy, AnnotationExclude,
	AnnotationStatus, AnnotationSkipped}

// AnnotationError is a bad per-pod override: the pod is denied with its message.
type AnnotationError struct {
	Key, Value, Reason string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("crawlpolite: annotation %s=%q: %s", e.Key, e.Value, e.Reason)
}

// overrides are a pod's validated annotations applied to the configuration.
type overrides struct {
	cfg     Config
	noProxy []string
	exclude []string
}

func parseAnnotations(pod *corev1.Pod, cfg Config) (overrides, error) {
	o := overrides{cfg: cfg}
	o.cfg.Resources = *cfg.Resources.DeepCopy()
	keys := make([]string, 0, len(pod.Annotations))
	for k := range pod.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same every time
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		v := pod.Annotations[k]
		bad := func(reason string) error { return &AnnotationError{Key: k, Value: v, Reason: reason} }
		switch k {
		case AnnotationImage:
			if v == "" || strings.ContainsAny(v, " \t\n") {
				return o, bad("must be an image reference")
			}
			o.cfg.Image = v
		case AnnotationCPU, AnnotationMemory, AnnotationCPULimit, AnnotationMemLimit:
			q, err := resource.ParseQuantity(v)
			if err != nil || q.Sign() <= 0 {
				return o, bad("must be a positive quantity such as 100m or 64Mi")
			}
			name, list := corev1.ResourceCPU, &o.cfg.Resources.Requests
			if k == AnnotationMemory || k == AnnotationMemLimit {
				name = corev1.ResourceMemory
			}
			if k == AnnotationCPULimit || k == AnnotationMemLimit {
				list = &o.cfg.Resources.Limits
			}
			if *list == nil {
				*list = corev1.ResourceList{}
			}
			(*list)[name] = q
		case AnnotationLogLevel:
			if !validLogLevel(v) {
				return o, bad("must be debug, info, warn or error")
			}
			o.cfg.LogLevel = v
		case AnnotationMode:
			if !validMode(v) {
				return o, bad("must be auto, native or legacy")
			}
			o.cfg.Mode = Mode(v)
		case AnnotationNoProxy:
			for _, e := range splitList(v) {
				if err := noProxyEntry(e); err != nil {
					return o, bad(err.Error())
				}
				o.noProxy = append(o.noProxy, e)
			}
		case AnnotationExclude:
			for _, c := range splitList(v) {
				if errs := validation.IsDNS1123Label(c); len(errs) > 0 {
					return o, bad(fmt.Sprintf("%q is not a container name", c))
				}
				o.exclude = append(o.exclude, c)
			}
		case AnnotationStatus, AnnotationSkipped:
		default:
			return o, bad("unknown crawlpolite annotation; known: " + strings.Join(knownAnnotations[:len(knownAnnotations)-2], ", "))
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := o.cfg.Resources.Requests[name]
		lim, hasLim := o.cfg.Resources.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			return o, &AnnotationError{Key: prefix + "proxy-" + string(name), Value: req.String(),
				Reason: fmt.Sprintf("the request is above the limit %s", lim.String())}
		}
	}
	return o, nil
}

func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (o overrides) excluded(name string) bool { return slices.Contains(o.exclude, name) }
