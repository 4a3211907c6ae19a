package semaphore

import "sync"

// waiters routes grants pushed by the backend to the Acquire call waiting for them.
type waiters struct {
	mu sync.Mutex
	m  map[string]chan grant
}

func newWaiters() *waiters { return &waiters{m: make(map[string]chan grant)} }

func (w *waiters) add(rid string) <-chan grant {
	ch := make(chan grant, 1)
	w.mu.Lock()
	w.m[rid] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(rid string) {
	w.mu.Lock()
	delete(w.m, rid)
	w.mu.Unlock()
}

// deliver hands g to rid's waiter, if it is still waiting. It never blocks: a second push for the
// same request (a heartbeat's reply already carried the grant) is dropped.
func (w *waiters) deliver(rid string, g grant) {
	w.mu.Lock()
	ch := w.m[rid]
	w.mu.Unlock()
	if ch != nil {
		select {
		case ch <- g:
		default:
		}
	}
}
