package charttest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestChartValues: what the values the issue names as the chart's interface do to the rendered
// objects (helm template, as users' `helm install` renders them).
func TestChartValues(t *testing.T) {
	const redisURL = "redis+cluster://redis-0.redis.data.svc:6379?addr=redis-1.redis.data.svc:6379&addr=redis-2.redis.data.svc:6379"
	for _, c := range []struct {
		name  string
		args  []string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{"replicaCount 2 has a PodDisruptionBudget", nil, func(t *testing.T, objs []*unstructured.Unstructured) {
			pdb := find(t, objs, "PodDisruptionBudget", release+"-webhook")
			if got := field(t, pdb, "spec", "minAvailable"); got != float64(1) {
				t.Errorf("minAvailable %v, want 1", got)
			}
			pods := manager(t, objs).Spec.Template.Labels
			for k, v := range field(t, pdb, "spec", "selector", "matchLabels").(map[string]any) {
				if pods[k] != v {
					t.Errorf("the budget selects %s=%v, the manager's pods have %q", k, v, pods[k])
				}
			}
		}},
		{"replicaCount 1 has none", []string{"--set", "replicaCount=1"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if o := lookup(objs, "PodDisruptionBudget"); o != nil {
				t.Errorf("PodDisruptionBudget %s rendered for one replica (it would block every drain)", o.GetName())
			}
		}},
		{"manager spreads over zones by default", nil, func(t *testing.T, objs []*unstructured.Unstructured) {
			m := manager(t, objs)
			want := []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
				WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: m.Spec.Selector}}
			if got := m.Spec.Template.Spec.TopologySpreadConstraints; !reflect.DeepEqual(got, want) {
				t.Errorf("topologySpreadConstraints %+v, want %+v", got, want)
			}
		}},
		{"topologySpreadConstraints replace the default", []string{"--set", "topologySpreadConstraints[0].maxSkew=2",
			"--set", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
			"--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			got := manager(t, objs).Spec.Template.Spec.TopologySpreadConstraints
			if len(got) != 1 || got[0].MaxSkew != 2 || got[0].TopologyKey != "kubernetes.io/hostname" {
				t.Errorf("topologySpreadConstraints %+v, want only the one set", got)
			}
		}},
		{"external Redis with existingSecret", []string{"--values", "testdata/values/redis-cluster.yaml"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			args := managerArgs(t, objs)
			for _, want := range []string{"--redis=" + redisURL, "--redis-password-secret=my-redis"} {
				if !slices.Contains(args, want) {
					t.Errorf("manager args lack %q: %v", want, args)
				}
			}
			if o := lookup(objs, "Secret"); o != nil {
				t.Errorf("the chart made Secret %s; the password is the user's existingSecret", o.GetName())
			}
			if o := lookup(objs, "Deployment", release+"-redis"); o != nil {
				t.Error("the bundled Redis rendered with redis.mode external")
			}
		}},
		{"no Redis", []string{"--set", "redis.mode=none"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, a := range managerArgs(t, objs) {
				if strings.HasPrefix(a, "--redis") {
					t.Errorf("manager has %s with redis.mode none", a)
				}
			}
			if o := lookup(objs, "Deployment", release+"-redis"); o != nil {
				t.Error("the bundled Redis rendered with redis.mode none")
			}
		}},
		{"legacy injection mode", []string{"--values", "testdata/values/legacy.yaml"}, func(t *testing.T, objs []*unstructured.Unstructured) {
			if args := managerArgs(t, objs); !slices.Contains(args, "--mode=legacy") {
				t.Errorf("manager args lack --mode=legacy: %v", args)
			}
		}},
		{"Pod Security restricted", nil, func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, name := range []string{release + "-webhook", release + "-redis"} {
				d := deployment(t, objs, name)
				for _, v := range restrictedViolations(d.Spec.Template.Spec) {
					t.Errorf("Deployment %s: %s", name, v)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := helmTemplate(t, namespace, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, decode(t, out))
		})
	}
}

// restrictedViolations lists what in spec the Pod Security Standards' restricted profile refuses
// (the checks of k8s.io/pod-security-admission's restricted level that a pod spec can fail).
func restrictedViolations(spec corev1.PodSpec) []string {
	var out []string
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		out = append(out, "host namespaces")
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		out = append(out, "pod runAsUser 0")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			out = append(out, "volume "+v.Name+": hostPath")
		}
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if !nonRoot {
			out = append(out, c.Name+": runAsNonRoot is not true")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			out = append(out, c.Name+": runAsUser 0")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			out = append(out, c.Name+": allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			out = append(out, c.Name+": privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			out = append(out, c.Name+": capabilities do not drop ALL")
		} else if add := slices.DeleteFunc(slices.Clone(sc.Capabilities.Add), func(c corev1.Capability) bool { return c == "NET_BIND_SERVICE" }); len(add) > 0 {
			out = append(out, c.Name+": capabilities add "+strings.Join(capStrings(add), ","))
		}
		seccomp := psc.SeccompProfile
		if sc.SeccompProfile != nil {
			seccomp = sc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost {
			out = append(out, c.Name+": seccompProfile is not RuntimeDefault (or Localhost)")
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				out = append(out, c.Name+": hostPort")
			}
		}
	}
	return out
}

func capStrings(cs []corev1.Capability) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// lookup returns the first object of that kind (and name, if given), or nil.
func lookup(objs []*unstructured.Unstructured, kind string, name ...string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (len(name) == 0 || o.GetName() == name[0]) {
			return o
		}
	}
	return nil
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "Deployment", name).Object, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func manager(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return deployment(t, objs, release+"-webhook")
}

func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	for _, c := range manager(t, objs).Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c.Args
		}
	}
	t.Fatal("the manager Deployment has no container named manager")
	return nil
}
