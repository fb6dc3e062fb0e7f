#include "common/process.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace mamori {
namespace {

// An 8 MB body buffer comes from the arena, not from a fresh mmap (which
// glibc would use by default for anything over 128 KB).
TEST(Process, LargeBuffersComeFromTheArena) {
  KeepFreedMemoryForReuse();
  const size_t mapped_before = mallinfo2().hblks;
  void* p = std::malloc(8 << 20);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 8 << 20);
  EXPECT_EQ(mallinfo2().hblks, mapped_before);
  std::free(p);
}

}  // namespace
}  // namespace mamori
