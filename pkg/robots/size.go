package robots

import (
	"sort"
	"unsafe"
)

// Size returns the heap the rules hold, in bytes: the arena, the records, and the memoised groups
// of For, each rounded up as the Go allocator rounds it. The cache's byte budget counts this.
func (r *Rules) Size() int {
	if r == nil {
		return 0
	}
	return allocSize(int(unsafe.Sizeof(*r))) + allocSize(len(r.text)) +
		allocSize(cap(r.rules)*int(unsafe.Sizeof(rule{}))) +
		allocSize(cap(r.agents)*int(unsafe.Sizeof(span{}))) +
		allocSize(cap(r.groups)*int(unsafe.Sizeof(group{}))) +
		int(r.memo.bytes.Load())
}

// size is the heap a merged group holds beyond the file's arena, which it shares.
func (g *Group) size() int {
	return allocSize(int(unsafe.Sizeof(*g))) +
		allocSize(cap(g.plain)*int(unsafe.Sizeof(rule{}))) +
		allocSize(cap(g.slots)*4) +
		allocSize(cap(g.lens)*4) +
		allocSize(cap(g.wild)*int(unsafe.Sizeof(wildRule{})))
}

const memoEntrySize = int(unsafe.Sizeof(memoEntry{}))

// sizeClasses are the Go allocator's small object sizes (runtime/sizeclasses.go); larger objects
// take whole 8 KiB pages.
var sizeClasses = []int{0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
	256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536,
	1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472,
	9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
	32768}

// allocSize is what the allocator takes for an object of n bytes.
func allocSize(n int) int {
	if n <= 0 {
		return 0
	}
	if n > 32768 {
		return (n + 8191) &^ 8191
	}
	return sizeClasses[sort.SearchInts(sizeClasses, n)]
}
