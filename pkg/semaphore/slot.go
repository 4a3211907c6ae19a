package semaphore

// Slot is the Redis Cluster hash slot of every Redis key of a semaphore key (they share the hash
// tag "{key}"): CRC16-CCITT (XMODEM) of key, modulo 16384.
func Slot(key string) uint16 {
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return crc & 16383
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
