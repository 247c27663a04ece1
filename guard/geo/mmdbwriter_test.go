package geo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// This file writes small MaxMind DB files for tests in format version 2.0,
// the version maxminddb-golang reads. A file is a binary search tree over
// 128-bit addresses with 24-bit records, a 16-byte zero separator, a data
// section of typed values, and a metadata map after the marker
// "\xAB\xCD\xEFMaxMind.com". maxminddb-golang can read the format but not
// write it, and no writer library is a dependency of this module.

// mmdbRecord is a network and the value stored for it. Values are nested
// map[string]any, string, bool and uint32.
type mmdbRecord struct {
	network string
	value   map[string]any
}

// mmdbFile describes a test database.
type mmdbFile struct {
	databaseType string
	buildEpoch   uint64
	records      []mmdbRecord
}

// Data type numbers of the format.
const (
	mmdbString  = 2
	mmdbUint16  = 5
	mmdbUint32  = 6
	mmdbMap     = 7
	mmdbUint64  = 9
	mmdbArray   = 11
	mmdbBoolean = 14
)

// writeMMDB writes f into a new file in a temporary directory and returns
// its path.
func writeMMDB(t *testing.T, f mmdbFile) string {
	t.Helper()
	content, err := f.encode()
	if err != nil {
		t.Fatalf("encode test database: %v", err)
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// trieNode is a node of the search tree being built; a child is either
// another node, a data offset, or empty.
type trieNode struct {
	children [2]*trieNode
	data     [2]int // data offset + 1; 0 means none
	index    int
}

func (f mmdbFile) encode() ([]byte, error) {
	var data bytes.Buffer
	root := &trieNode{}
	for _, r := range f.records {
		prefix, err := netip.ParsePrefix(r.network)
		if err != nil {
			return nil, err
		}
		offset := data.Len()
		encodeValue(&data, r.value)
		if err := insert(root, prefix, offset); err != nil {
			return nil, err
		}
	}

	nodes := numberNodes(root)
	var out bytes.Buffer
	for _, n := range nodes {
		for side := range 2 {
			value := len(nodes) // empty
			switch {
			case n.children[side] != nil:
				value = n.children[side].index
			case n.data[side] != 0:
				value = len(nodes) + 16 + n.data[side] - 1
			}
			if value >= 1<<24 {
				return nil, fmt.Errorf("record value %d does not fit 24 bits", value)
			}
			out.Write([]byte{byte(value >> 16), byte(value >> 8), byte(value)})
		}
	}
	out.Write(make([]byte, 16))
	out.Write(data.Bytes())
	out.WriteString("\xAB\xCD\xEFMaxMind.com")
	encodeValue(&out, map[string]any{
		"node_count":                  uint32(len(nodes)),
		"record_size":                 uint16(24),
		"ip_version":                  uint16(6),
		"database_type":               f.databaseType,
		"languages":                   []any{"en"},
		"binary_format_major_version": uint16(2),
		"binary_format_minor_version": uint16(0),
		"build_epoch":                 f.buildEpoch,
		"description":                 map[string]any{"en": "Keyward test database"},
	})
	return out.Bytes(), nil
}

// insert adds prefix to the tree; IPv4 prefixes go under ::/96, where
// readers look IPv4 addresses up.
func insert(root *trieNode, prefix netip.Prefix, offset int) error {
	bits := prefix.Bits()
	addr := prefix.Addr().As16()
	if prefix.Addr().Is4() {
		bits += 96
		addr = netip.AddrFrom16([16]byte{}).As16()
		copy(addr[12:], prefix.Addr().AsSlice())
	}
	if bits == 0 {
		return fmt.Errorf("prefix %s covers everything", prefix)
	}

	node := root
	for i := range bits - 1 {
		side := int(addr[i/8]>>(7-i%8)) & 1
		if node.data[side] != 0 {
			return fmt.Errorf("prefix %s overlaps an earlier one", prefix)
		}
		if node.children[side] == nil {
			node.children[side] = &trieNode{}
		}
		node = node.children[side]
	}
	last := bits - 1
	side := int(addr[last/8]>>(7-last%8)) & 1
	if node.children[side] != nil || node.data[side] != 0 {
		return fmt.Errorf("prefix %s overlaps an earlier one", prefix)
	}
	node.data[side] = offset + 1
	return nil
}

// numberNodes assigns indexes in breadth-first order with the root at 0.
func numberNodes(root *trieNode) []*trieNode {
	nodes := []*trieNode{root}
	for i := 0; i < len(nodes); i++ {
		nodes[i].index = i
		for _, child := range nodes[i].children {
			if child != nil {
				nodes = append(nodes, child)
			}
		}
	}
	return nodes
}

func encodeValue(out *bytes.Buffer, value any) {
	switch v := value.(type) {
	case string:
		writeControl(out, mmdbString, len(v))
		out.WriteString(v)
	case bool:
		size := 0
		if v {
			size = 1
		}
		writeControl(out, mmdbBoolean, size)
	case uint16:
		writeUnsigned(out, mmdbUint16, uint64(v))
	case uint32:
		writeUnsigned(out, mmdbUint32, uint64(v))
	case uint64:
		writeUnsigned(out, mmdbUint64, v)
	case []any:
		writeControl(out, mmdbArray, len(v))
		for _, item := range v {
			encodeValue(out, item)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for key := range v {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		writeControl(out, mmdbMap, len(keys))
		for _, key := range keys {
			encodeValue(out, key)
			encodeValue(out, v[key])
		}
	default:
		panic(fmt.Sprintf("test database value of type %T", value))
	}
}

// writeUnsigned writes an unsigned integer in the fewest big-endian bytes.
func writeUnsigned(out *bytes.Buffer, typ int, v uint64) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	trimmed := bytes.TrimLeft(buf[:], "\x00")
	writeControl(out, typ, len(trimmed))
	out.Write(trimmed)
}

// writeControl writes the control byte (type in the top three bits, size in
// the low five) with the extended-type and long-size forms.
func writeControl(out *bytes.Buffer, typ, size int) {
	var control byte
	var extended []byte
	if typ <= 7 {
		control = byte(typ) << 5
	} else {
		extended = []byte{byte(typ - 7)}
	}

	var sizeBytes []byte
	switch {
	case size < 29:
		control |= byte(size)
	case size < 29+256:
		control |= 29
		sizeBytes = []byte{byte(size - 29)}
	case size < 285+65536:
		control |= 30
		sizeBytes = []byte{byte((size - 285) >> 8), byte(size - 285)}
	default:
		control |= 31
		n := size - 65821
		sizeBytes = []byte{byte(n >> 16), byte(n >> 8), byte(n)}
	}
	out.WriteByte(control)
	out.Write(extended)
	out.Write(sizeBytes)
}
