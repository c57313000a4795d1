// tests/fs_io_test.cc — file I/O through the public API: read/write round
// trips (unaligned, across blocks, large), sparse files, truncate, fallocate
// (keep-size, punch hole, zero range), EFBIG, fiemap, persistence across
// remounts, "a new block never shows an old file's bytes", ENOSPC, fence
// counts of the data path, no stale cached extent after punch/truncate, and a
// randomized differential test against an in-memory model.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fs/fs_impl.h"
#include "test_util.h"

namespace udax {
namespace {

using namespace udax::testutil;

constexpr uint64_t B = kBlockSize;

class IoTest : public FsFixture {
 protected:
  File Create(const std::string& p) {
    auto f = fs().Open(p, O_CREAT | O_RDWR | O_TRUNC);
    EXPECT_TRUE(f.has_value()) << p << ": " << f.error().ToString();
    return f.has_value() ? std::move(f).value() : File();
  }
  std::vector<uint8_t> PreadAll(File& f, uint64_t off, size_t len) {
    std::vector<uint8_t> buf(len, 0xEE);
    auto n = f.Pread(buf.data(), len, off);
    EXPECT_TRUE(n.has_value()) << n.error().ToString();
    if (n.has_value()) buf.resize(*n);
    return buf;
  }
  std::string PreadStr(File& f, uint64_t off, size_t len) {
    auto v = PreadAll(f, off, len);
    return std::string(v.begin(), v.end());
  }
  uint64_t Size(File& f) {
    auto st = f.GetStat();
    EXPECT_TRUE(st.has_value());
    return st.has_value() ? st->size : 0;
  }
  uint64_t Blocks512(File& f) {
    auto st = f.GetStat();
    EXPECT_TRUE(st.has_value());
    return st.has_value() ? st->blocks : 0;
  }
  uint64_t Fences() { return ImplOf(*fs_)->device()->fence_count(); }
};

// ---- round trips --------------------------------------------------------------

TEST_F(IoTest, UnalignedRoundTrip) {
  File f = Create("/f");
  auto data = Pattern(10000, 1);
  ASSIGN_OR_FAIL(size_t n, f.Pwrite(data.data(), data.size(), 1000));
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(Size(f), 11000u);
  auto head = PreadAll(f, 0, 1000);
  ASSERT_EQ(head.size(), 1000u);
  EXPECT_EQ(FirstNot(head.data(), head.size(), 0), -1) << "bytes before the write read as zero";
  EXPECT_TRUE(PreadAll(f, 1000, 10000) == data);
  // Reads of every odd offset/length across the block boundaries.
  for (uint64_t off : {0ull, 1ull, 4095ull, 4096ull, 4097ull, 8191ull, 10999ull}) {
    for (size_t len : {size_t{1}, size_t{2}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{20000}}) {
      auto got = PreadAll(f, off, len);
      size_t want_len = std::min<uint64_t>(len, 11000 - off);
      ASSERT_EQ(got.size(), want_len) << off << "+" << len;
      for (size_t i = 0; i < want_len; i++) {
        uint64_t p = off + i;
        uint8_t want = p < 1000 ? 0 : data[p - 1000];
        ASSERT_EQ(got[i], want) << "at " << p;
      }
    }
  }
  // Reading at or past EOF returns 0 bytes.
  EXPECT_EQ(PreadAll(f, 11000, 10).size(), 0u);
  EXPECT_EQ(PreadAll(f, 1ull << 40, 10).size(), 0u);
  EXPECT_EQ(PreadAll(f, 0, 0).size(), 0u);
  // Write / Read / Seek use the file position.
  ASSERT_OK(f.Seek(4094));
  ASSERT_OK(f.Write("ABCD", 4));
  ASSERT_OK(f.Write("EF", 2));
  ASSERT_OK(f.Seek(4094));
  char buf[6];
  ASSIGN_OR_FAIL(size_t r, f.Read(buf, 6));
  EXPECT_EQ(r, 6u);
  EXPECT_EQ(std::string(buf, 6), "ABCDEF");
  ASSIGN_OR_FAIL(size_t r2, f.Read(buf, 2));
  EXPECT_EQ(r2, 2u);
  EXPECT_EQ(buf[0], static_cast<char>(data[4100 - 1000]));
}

TEST_F(IoTest, SmallWritesAcrossBlockBoundaries) {
  File f = Create("/f");
  std::vector<uint8_t> model;
  auto put = [&](uint64_t off, const std::vector<uint8_t>& d) {
    ASSIGN_OR_FAIL(size_t n, f.Pwrite(d.data(), d.size(), off));
    ASSERT_EQ(n, d.size());
    if (model.size() < off + d.size()) model.resize(off + d.size(), 0);
    std::copy(d.begin(), d.end(), model.begin() + off);
  };
  put(4095, Bytes("ab"));
  put(8191, Bytes("cd"));
  put(0, Pattern(1, 2));
  put(4094, Pattern(4098, 3));
  put(12287, Pattern(3, 4));
  put(3, Pattern(3 * B, 5));
  EXPECT_EQ(Size(f), model.size());
  EXPECT_TRUE(PreadAll(f, 0, model.size()) == model);
  Remount();
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/f"));
  EXPECT_TRUE(back == model);
}

TEST_F(IoTest, LargeWrite8MiB) {
  File f = Create("/big");
  auto data = Pattern(8 * kMiB, 42);
  uint64_t free0 = FreeBlocks();
  ASSIGN_OR_FAIL(size_t n, f.Pwrite(data.data(), data.size(), 0));
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(Size(f), 8 * kMiB);
  EXPECT_EQ(Blocks512(f), 8 * kMiB / 512);
  EXPECT_EQ(free0 - FreeBlocks(), 8 * kMiB / B + 0) << "no more than the data blocks";
  EXPECT_TRUE(PreadAll(f, 0, data.size()) == data);
  // Unaligned 8 MiB overwrite in one call, partly extending.
  auto data2 = Pattern(8 * kMiB, 43);
  ASSIGN_OR_FAIL(size_t n2, f.Pwrite(data2.data(), data2.size(), 4 * kMiB + 123));
  EXPECT_EQ(n2, data2.size());
  std::copy(data2.begin(), data2.begin() + (4 * kMiB - 123), data.begin() + 4 * kMiB + 123);
  data.insert(data.end(), data2.begin() + (4 * kMiB - 123), data2.end());
  ASSERT_EQ(data.size(), 12 * kMiB + 123);
  EXPECT_EQ(Size(f), data.size());
  EXPECT_TRUE(PreadAll(f, 0, data.size()) == data);
  ASSERT_OK(f.Close());
  Remount();
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/big"));
  EXPECT_TRUE(back == data);
  ExpectFsckClean();
}

// ---- sparse files -------------------------------------------------------------------

TEST_F(IoTest, SparseFiles) {
  File f = Create("/sparse");
  const uint64_t far = 1ull << 32;  // 4 GiB, far beyond the 64 MiB device
  ASSERT_OK(f.Pwrite("X", 1, far));
  EXPECT_EQ(Size(f), far + 1);
  EXPECT_EQ(Blocks512(f), 8u) << "one block allocated";
  auto z = PreadAll(f, 0, 3 * B);
  EXPECT_EQ(FirstNot(z.data(), z.size(), 0), -1);
  z = PreadAll(f, far - 2 * kMiB, 2 * kMiB);
  ASSERT_EQ(z.size(), 2 * kMiB);
  EXPECT_EQ(FirstNot(z.data(), z.size(), 0), -1);
  auto tail = PreadAll(f, far - 10, 100);
  ASSERT_EQ(tail.size(), 11u);
  EXPECT_EQ(FirstNot(tail.data(), 10, 0), -1);
  EXPECT_EQ(tail[10], 'X');
  // Fill a hole in the middle; the neighbours stay holes.
  ASSERT_OK(f.Pwrite("mid", 3, far / 2 + 4094));
  EXPECT_EQ(Blocks512(f), 24u);
  auto mid = PreadAll(f, far / 2, 2 * B);
  EXPECT_EQ(FirstNot(mid.data(), 4094, 0), -1);
  EXPECT_EQ(std::string(mid.begin() + 4094, mid.begin() + 4097), "mid");
  EXPECT_EQ(FirstNot(mid.data() + 4097, mid.size() - 4097, 0), -1);
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  ASSERT_EQ(ext.size(), 2u);
  EXPECT_EQ(ext[0].file_offset, far / 2);
  EXPECT_EQ(ext[0].length, 2 * B);
  EXPECT_EQ(ext[1].file_offset, far / B * B);
  EXPECT_EQ(ext[1].length, B);
  ASSERT_OK(f.Close());
  ExpectFsckClean();
  ASSIGN_OR_FAIL(File g, fs().Open("/sparse", O_RDONLY));
  EXPECT_EQ(Size(g), far + 1);
  EXPECT_EQ(PreadAll(g, far, 1)[0], 'X');
}

// ---- truncate ---------------------------------------------------------------------

TEST_F(IoTest, TruncateDownThenUpShowsZeroes) {
  File f = Create("/t");
  auto data = Pattern(10000, 7);
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  uint64_t free_full = FreeBlocks();
  ASSERT_OK(f.Truncate(5000));  // inside block 1; block 2 is freed
  EXPECT_EQ(Size(f), 5000u);
  EXPECT_EQ(Blocks512(f), 16u);
  EXPECT_EQ(FreeBlocks(), free_full + 1);
  EXPECT_EQ(PreadAll(f, 0, 20000).size(), 5000u);
  ASSERT_OK(f.Truncate(20000));
  EXPECT_EQ(Size(f), 20000u);
  auto all = PreadAll(f, 0, 20000);
  ASSERT_EQ(all.size(), 20000u);
  EXPECT_TRUE(std::equal(all.begin(), all.begin() + 5000, data.begin()));
  EXPECT_EQ(FirstNot(all.data() + 5000, 15000, 0), -1)
      << "stale bytes past the old EOF at " << 5000 + FirstNot(all.data() + 5000, 15000, 0);

  // Same through the path API, and growing by a write beyond EOF in the EOF block.
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(fs().Truncate("/t", 100));
  EXPECT_EQ(Size(f), 100u);
  ASSERT_OK(f.Pwrite("Z", 1, 3000));  // same block as the old EOF
  all = PreadAll(f, 0, 3001);
  ASSERT_EQ(all.size(), 3001u);
  EXPECT_TRUE(std::equal(all.begin(), all.begin() + 100, data.begin()));
  EXPECT_EQ(FirstNot(all.data() + 100, 2900, 0), -1) << "stale bytes inside the EOF block";
  EXPECT_EQ(all[3000], 'Z');

  // Growing by fallocate (mode 0) past a truncated EOF.
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(f.Truncate(50));
  ASSERT_OK(f.Fallocate(0, 0, 3 * B));
  EXPECT_EQ(Size(f), 3 * B);
  all = PreadAll(f, 0, 3 * B);
  EXPECT_TRUE(std::equal(all.begin(), all.begin() + 50, data.begin()));
  EXPECT_EQ(FirstNot(all.data() + 50, all.size() - 50, 0), -1) << "stale bytes after fallocate";

  // Growing by zero-range past a truncated EOF.
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(f.Truncate(60));
  ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE, 4 * B, 10));
  EXPECT_EQ(Size(f), 4 * B + 10);
  all = PreadAll(f, 0, 4 * B + 10);
  EXPECT_EQ(FirstNot(all.data() + 60, all.size() - 60, 0), -1) << "stale bytes after zero range";

  // Growing by an appending write after truncating.
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(f.Truncate(70));
  ASSERT_OK(f.Close());
  {
    ASSIGN_OR_FAIL(File a, fs().Open("/t", O_WRONLY | O_APPEND));
    ASSERT_OK(a.Write("app", 3));
  }
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/t"));
  ASSERT_EQ(back.size(), 73u);
  EXPECT_EQ(std::string(back.begin() + 70, back.end()), "app");

  // Truncate to the same size, to zero, on a read-only handle, of a directory.
  ASSIGN_OR_FAIL(File g, fs().Open("/t", O_RDWR));
  ASSERT_OK(g.Truncate(73));
  EXPECT_EQ(Size(g), 73u);
  ASSERT_OK(g.Truncate(0));
  EXPECT_EQ(Blocks512(g), 0u);
  {
    ASSIGN_OR_FAIL(File r, fs().Open("/t", O_RDONLY));
    EXPECT_ERRNO(r.Truncate(10), EINVAL);
  }
  ASSERT_OK(fs().Mkdir("/dir"));
  EXPECT_ERRNO(fs().Truncate("/dir", 0), EISDIR);
  EXPECT_ERRNO(fs().Truncate("/missing", 0), ENOENT);
  ExpectFsckClean();
}

TEST_F(IoTest, TruncateLargeFileFreesEverything) {
  uint64_t free0 = FreeBlocks();
  File f = Create("/t");
  // Many small extents: write every other block.
  std::vector<uint8_t> blk(B, 0x5A);
  for (uint64_t i = 0; i < 2000; i += 2) ASSERT_OK(f.Pwrite(blk.data(), B, i * B));
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  EXPECT_EQ(ext.size(), 1000u);
  EXPECT_EQ(Blocks512(f), 1000u * 8);
  ASSERT_OK(f.Truncate(B * 1000 + 1));
  EXPECT_EQ(Blocks512(f), 501u * 8);
  ASSERT_OK(f.Truncate(0));
  EXPECT_EQ(Blocks512(f), 0u);
  ASSIGN_OR_FAIL(auto ext2, f.Fiemap());
  EXPECT_TRUE(ext2.empty());
  EXPECT_EQ(FreeBlocks(), free0);
  ASSERT_OK(f.Close());
  ExpectFsckClean();
}

// ---- fallocate ----------------------------------------------------------------------

TEST_F(IoTest, FallocateKeepSize) {
  File f = Create("/f");
  uint64_t free0 = FreeBlocks();
  ASSERT_OK(f.Fallocate(FALLOC_FL_KEEP_SIZE, 0, kMiB));
  EXPECT_EQ(Size(f), 0u);
  EXPECT_EQ(Blocks512(f), kMiB / 512);
  EXPECT_EQ(free0 - FreeBlocks(), kMiB / B);
  EXPECT_EQ(PreadAll(f, 0, 100).size(), 0u);
  // Writing into the preallocated range allocates nothing more.
  uint64_t free1 = FreeBlocks();
  ASSERT_OK(f.Pwrite("abc", 3, 5000));
  EXPECT_EQ(FreeBlocks(), free1);
  EXPECT_EQ(Size(f), 5003u);
  auto all = PreadAll(f, 0, 5003);
  EXPECT_EQ(FirstNot(all.data(), 5000, 0), -1);
  // Extending the size over preallocated blocks shows zeroes.
  ASSERT_OK(f.Truncate(kMiB));
  all = PreadAll(f, 0, kMiB);
  EXPECT_EQ(FirstNot(all.data() + 5003, kMiB - 5003, 0), -1);
  // Mode 0 sets the size; existing data is untouched.
  ASSERT_OK(f.Fallocate(0, kMiB - 10, 2 * B));
  EXPECT_EQ(Size(f), kMiB - 10 + 2 * B);
  EXPECT_EQ(Blocks512(f), (kMiB + 2 * B) / 512);
  EXPECT_EQ(PreadStr(f, 5000, 3), "abc");
  // Beyond EOF with keep-size, then the size stays.
  ASSERT_OK(f.Fallocate(FALLOC_FL_KEEP_SIZE, 10 * kMiB, B));
  EXPECT_EQ(Size(f), kMiB - 10 + 2 * B);
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  ASSERT_FALSE(ext.empty());
  EXPECT_EQ(ext.back().file_offset, 10 * kMiB);
  // Invalid arguments.
  EXPECT_ERRNO(f.Fallocate(0, 0, 0), EINVAL);
  EXPECT_ERRNO(f.Fallocate(0x100, 0, 10), EOPNOTSUPP);
  EXPECT_ERRNO(f.Fallocate(FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
  EXPECT_ERRNO(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 10),
               EOPNOTSUPP);
  ASSERT_OK(f.Close());
  ExpectFsckClean();
}

TEST_F(IoTest, PunchHole) {
  File f = Create("/f");
  auto data = Pattern(kMiB, 11);
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  uint64_t free0 = FreeBlocks();
  ASSERT_EQ(Blocks512(f), kMiB / 512);
  // [10 blocks + 100, 20 blocks + 50): blocks 11..19 freed, partial ends zeroed.
  uint64_t off = 10 * B + 100, end = 20 * B + 50;
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, end - off));
  EXPECT_EQ(Size(f), kMiB);
  EXPECT_EQ(Blocks512(f), (256 - 9) * 8u);
  EXPECT_EQ(FreeBlocks(), free0 + 9);
  for (uint64_t i = off; i < end; i++) data[i] = 0;
  EXPECT_TRUE(PreadAll(f, 0, kMiB) == data);
  // Punch a range inside one block: nothing freed.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 30 * B + 1, 10));
  for (uint64_t i = 30 * B + 1; i < 30 * B + 11; i++) data[i] = 0;
  EXPECT_EQ(Blocks512(f), (256 - 9) * 8u);
  // ...and one that starts on a block boundary (it used to zero nothing).
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 40 * B, 10));
  for (uint64_t i = 40 * B; i < 40 * B + 10; i++) data[i] = 0;
  EXPECT_EQ(Blocks512(f), (256 - 9) * 8u);
  EXPECT_TRUE(PreadAll(f, 0, kMiB) == data);
  // Exactly aligned blocks; past EOF is fine and keeps the size.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 250 * B, 100 * B));
  for (uint64_t i = 250 * B; i < kMiB; i++) data[i] = 0;
  EXPECT_EQ(Size(f), kMiB);
  EXPECT_EQ(Blocks512(f), (256 - 9 - 6) * 8u);
  EXPECT_EQ(FreeBlocks(), free0 + 15);
  EXPECT_TRUE(PreadAll(f, 0, kMiB) == data);
  // Fiemap shows the holes.
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  uint64_t mapped = 0;
  for (const auto& e : ext) {
    mapped += e.length;
    EXPECT_FALSE(e.file_offset < 20 * B && e.file_offset + e.length > 11 * B) << "hole mapped";
    EXPECT_LE(e.file_offset + e.length, 250 * B);
  }
  EXPECT_EQ(mapped, (256 - 15) * B);
  // Writing into the punched hole allocates again.
  ASSERT_OK(f.Pwrite("refill", 6, 15 * B));
  std::copy_n("refill", 6, data.begin() + 15 * B);
  EXPECT_EQ(FreeBlocks(), free0 + 14);
  EXPECT_TRUE(PreadAll(f, 0, kMiB) == data);
  ASSERT_OK(f.Close());
  ExpectFsckClean();
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/f"));
  EXPECT_TRUE(back == data);
}

TEST_F(IoTest, ZeroRange) {
  File f = Create("/f");
  auto data = Pattern(64 * B, 12);
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  uint64_t blocks = Blocks512(f);
  ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE, 1000, 9000));
  for (uint64_t i = 1000; i < 10000; i++) data[i] = 0;
  EXPECT_EQ(Blocks512(f), blocks) << "zero range keeps the blocks";
  EXPECT_EQ(Size(f), 64 * B);
  EXPECT_TRUE(PreadAll(f, 0, data.size()) == data);
  // Over a hole it allocates zeroed blocks.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20 * B, 4 * B));
  EXPECT_EQ(Blocks512(f), blocks - 32);
  ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE, 20 * B, 4 * B));
  for (uint64_t i = 20 * B; i < 24 * B; i++) data[i] = 0;
  EXPECT_EQ(Blocks512(f), blocks);
  EXPECT_TRUE(PreadAll(f, 0, data.size()) == data);
  // Past EOF: with keep-size the size stays, without it grows.
  ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 64 * B, 4 * B));
  EXPECT_EQ(Size(f), 64 * B);
  ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE, 64 * B + 5, 100));
  EXPECT_EQ(Size(f), 64 * B + 105);
  data.resize(64 * B + 105, 0);
  EXPECT_TRUE(PreadAll(f, 0, data.size()) == data);
  ASSERT_OK(f.Close());
  ExpectFsckClean();
}

// ---- limits ---------------------------------------------------------------------------

TEST_F(IoTest, EfbigPastMaxFileSize) {
  File f = Create("/f");
  EXPECT_ERRNO(f.Pwrite("x", 1, kMaxFileSize), EFBIG);
  EXPECT_ERRNO(f.Pwrite("xy", 2, kMaxFileSize - 1), EFBIG);
  EXPECT_ERRNO(f.Pwrite("x", 1, UINT64_MAX), EFBIG);
  EXPECT_ERRNO(f.Pwrite("x", 1, UINT64_MAX - 4096), EFBIG);
  EXPECT_ERRNO(f.Truncate(kMaxFileSize + 1), EFBIG);
  EXPECT_ERRNO(f.Truncate(UINT64_MAX), EFBIG);
  EXPECT_ERRNO(f.Fallocate(0, kMaxFileSize, 1), EFBIG);
  EXPECT_ERRNO(f.Fallocate(0, UINT64_MAX - 10, 100), EFBIG);
  EXPECT_ERRNO(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, UINT64_MAX - 10, 100), EFBIG);
  EXPECT_EQ(Size(f), 0u);
  EXPECT_EQ(Blocks512(f), 0u);
  // The last byte is writable; the size is then exactly the maximum.
  ASSIGN_OR_FAIL(size_t n, f.Pwrite("L", 1, kMaxFileSize - 1));
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(Size(f), kMaxFileSize);
  EXPECT_EQ(PreadAll(f, kMaxFileSize - 1, 10)[0], 'L');
  {
    ASSIGN_OR_FAIL(File a, fs().Open("/f", O_WRONLY | O_APPEND));
    EXPECT_ERRNO(a.Write("x", 1), EFBIG);
  }
  ASSERT_OK(f.Truncate(kMaxFileSize));
  EXPECT_EQ(Blocks512(f), 8u);
  ASSERT_OK(f.Truncate(10));
  EXPECT_EQ(Blocks512(f), 0u) << "the only block was the last one";
  ASSERT_OK(f.Close());
  ExpectFsckClean();
}

// ---- fiemap ------------------------------------------------------------------------------

TEST_F(IoTest, FiemapMatchesDeviceBytes) {
  File f = Create("/f");
  auto a = Pattern(4 * B, 21), b = Pattern(B, 22);
  ASSERT_OK(f.Pwrite(a.data(), a.size(), 0));
  ASSERT_OK(f.Pwrite(b.data(), b.size(), 10 * B));
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  ASSERT_EQ(ext.size(), 2u);
  EXPECT_EQ(ext[0].file_offset, 0u);
  EXPECT_EQ(ext[0].length, 4 * B);
  EXPECT_EQ(ext[1].file_offset, 10 * B);
  EXPECT_EQ(ext[1].length, B);
  uint64_t dev_bytes = DeviceBytes();
  for (const auto& e : ext) {
    EXPECT_EQ(e.device_offset % B, 0u);
    EXPECT_GE(e.device_offset, 2 * B) << "not in the superblock/root/journal";
    EXPECT_LE(e.device_offset + e.length, dev_bytes - B) << "not over the secondary superblock";
    EXPECT_EQ(e.flags, 0u);
  }
  EXPECT_TRUE(ext[0].device_offset + ext[0].length <= ext[1].device_offset ||
              ext[1].device_offset + ext[1].length <= ext[0].device_offset);
  auto ext_copy = ext;
  ASSERT_OK(f.Close());
  UnmountNow();
  // The device holds the data where fiemap says.
  EXPECT_TRUE(ReadImage(path_, ext_copy[0].device_offset, 4 * B) == a);
  EXPECT_TRUE(ReadImage(path_, ext_copy[1].device_offset, B) == b);
  MountNow();
  ASSIGN_OR_FAIL(File g, fs().Open("/f", O_RDONLY));
  ASSIGN_OR_FAIL(auto ext2, g.Fiemap());
  ASSERT_EQ(ext2.size(), 2u);
  EXPECT_EQ(ext2[0].device_offset, ext_copy[0].device_offset);
  // An empty file has no extents.
  File e = Create("/empty");
  ASSIGN_OR_FAIL(auto none, e.Fiemap());
  EXPECT_TRUE(none.empty());
}

// ---- persistence ---------------------------------------------------------------------------

TEST_F(IoTest, DataPersistsAcrossRemount) {
  std::vector<std::vector<uint8_t>> files;
  for (int i = 0; i < 20; i++) {
    files.push_back(Pattern(1 + i * 37777, 100 + i));
    ASSERT_OK(WriteWhole(fs(), "/f" + std::to_string(i), files.back()));
  }
  // Overwrite in place (the fast path) and then remount.
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/f10", O_RDWR));
    ASSERT_OK(f.Pwrite("OVERWRITE", 9, 1000));
    std::copy_n("OVERWRITE", 9, files[10].begin() + 1000);
  }
  for (int round = 0; round < 2; round++) {
    Remount();
    for (int i = 0; i < 20; i++) {
      ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/f" + std::to_string(i)));
      EXPECT_TRUE(back == files[i]) << i;
    }
  }
  // After a crash (no unmount) the data is there too: writes are durable at return.
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/f3", O_RDWR));
    ASSERT_OK(f.Pwrite("CRASH", 5, 7));
    std::copy_n("CRASH", 5, files[3].begin() + 7);
    auto ext = Pattern(50000, 999);
    ASSERT_OK(f.Pwrite(ext.data(), ext.size(), files[3].size()));
    files[3].insert(files[3].end(), ext.begin(), ext.end());
    CrashForTesting(*fs_);
  }
  fs_.reset();
  MountNow();
  for (int i = 0; i < 20; i++) {
    ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/f" + std::to_string(i)));
    EXPECT_TRUE(back == files[i]) << i;
  }
  ExpectFsckClean();
}

// ---- no stale data -------------------------------------------------------------------------

TEST_F(IoTest, NewBlocksNeverShowOldBytes) {
  std::map<std::string, std::vector<FileExtent>> exts_;
  std::map<std::string, std::vector<uint8_t>> wants_;
  // Fill the device with 0xAB, then delete.
  {
    File big = Create("/fill");
    std::vector<uint8_t> ab(kMiB, 0xAB);
    uint64_t off = 0;
    for (;;) {
      auto n = big.Pwrite(ab.data(), ab.size(), off);
      if (!n.has_value()) {
        EXPECT_EQ(n.error().err(), ENOSPC) << n.error().ToString();
        break;
      }
      off += *n;
      if (*n < ab.size()) break;
    }
    EXPECT_GT(off, 40 * kMiB);
    EXPECT_EQ(FreeBlocks(), 0u);
  }
  ASSERT_OK(fs().Unlink("/fill"));

  auto check_zero_except = [&](const std::string& p, const std::vector<std::pair<uint64_t, std::string>>& w) {
    ASSIGN_OR_FAIL(auto all, ReadWhole(fs(), p));
    std::vector<uint8_t> want(all.size(), 0);
    for (const auto& [o, s] : w) std::copy(s.begin(), s.end(), want.begin() + o);
    for (size_t i = 0; i < all.size(); i++)
      ASSERT_EQ(all[i], want[i]) << p << ": byte " << i << " of " << all.size();
    // And at the device level: every mapped block is zero except the written bytes.
    ASSIGN_OR_FAIL(File f, fs().Open(p, O_RDONLY));
    ASSIGN_OR_FAIL(auto ext, f.Fiemap());
    exts_[p] = ext;
    wants_[p] = want;
  };
  {
    File a = Create("/a");  // sparse writes
    ASSERT_OK(a.Pwrite("x", 1, 5000));
    ASSERT_OK(a.Pwrite("y", 1, 3 * kMiB + 17));
  }
  check_zero_except("/a", {{5000, "x"}, {3 * kMiB + 17, "y"}});
  {
    File b = Create("/b");  // fallocate mode 0
    ASSERT_OK(b.Fallocate(0, 0, 2 * kMiB));
  }
  check_zero_except("/b", {});
  {
    File c = Create("/c");  // keep-size prealloc, then truncate up
    ASSERT_OK(c.Fallocate(FALLOC_FL_KEEP_SIZE, 0, kMiB));
    ASSERT_OK(c.Truncate(kMiB));
  }
  check_zero_except("/c", {});
  {
    File d = Create("/d");  // truncate up (a hole) then a write in the middle
    ASSERT_OK(d.Truncate(3 * kMiB));
    ASSERT_OK(d.Pwrite("middle", 6, kMiB + 4000));
  }
  check_zero_except("/d", {{kMiB + 4000, "middle"}});
  {
    File e = Create("/e");  // small write, truncate up, write beyond
    ASSERT_OK(e.Pwrite("hello", 5, 0));
    ASSERT_OK(e.Truncate(kMiB));
    ASSERT_OK(e.Pwrite("end", 3, kMiB));
  }
  check_zero_except("/e", {{0, "hello"}, {kMiB, "end"}});
  {
    File g = Create("/g");  // zero range over holes; an unaligned write into a new block
    ASSERT_OK(g.Fallocate(FALLOC_FL_ZERO_RANGE, 100, 3 * B));
    ASSERT_OK(g.Pwrite("unaligned", 9, 10 * B + 1234));
  }
  check_zero_except("/g", {{10 * B + 1234, "unaligned"}});
  {
    File h = Create("/h");  // append-mode writes
    ASSERT_OK(h.Close());
    ASSIGN_OR_FAIL(File ha, fs().Open("/h", O_WRONLY | O_APPEND));
    ASSERT_OK(ha.Write("a1", 2));
    ASSERT_OK(ha.Write("b2", 2));
  }
  check_zero_except("/h", {{0, "a1b2"}});
  std::string long_target(300, 'L');
  ASSERT_OK(fs().Symlink(long_target, "/sym"));
  EXPECT_EQ(*fs().Readlink("/sym"), long_target);

  // Raw device check of every mapped block (beyond EOF too: blocks are whole).
  UnmountNow();
  for (const auto& [p, ext] : exts_) {
    const auto& want = wants_[p];
    for (const auto& e : ext) {
      auto raw = ReadImage(path_, e.device_offset, e.length);
      for (uint64_t i = 0; i < e.length; i++) {
        uint64_t fo = e.file_offset + i;
        uint8_t w = fo < want.size() ? want[fo] : 0;
        ASSERT_EQ(raw[i], w) << p << ": device byte for file offset " << fo;
      }
    }
  }
  ExpectFsckClean();
}

// ---- ENOSPC -----------------------------------------------------------------------------------

TEST_F(IoTest, FullDeviceEnospcKeepsEarlierFiles) {
  uint64_t free0 = FreeBlocks();
  ASSERT_OK(testutil::GiveRootItsLeaf(*fs_));
  uint64_t all_free0 = AllFreeBlocks();
  std::vector<std::vector<uint8_t>> files;
  Status last;
  size_t partial = 0;
  for (int i = 0;; i++) {
    auto data = Pattern(kMiB + 777, 500 + i);
    auto f = fs().Open("/f" + std::to_string(i), O_CREAT | O_RDWR | O_EXCL);
    if (!f.has_value()) {
      last = f.error();
      break;
    }
    auto n = f->Pwrite(data.data(), data.size(), 0);
    if (!n.has_value()) {
      last = n.error();
      files.push_back({});
      break;
    }
    if (*n < data.size()) {
      partial = *n;
      data.resize(*n);
      files.push_back(data);
      // The next write at the end fails with ENOSPC.
      auto n2 = f->Pwrite("more", 4, *n);
      ASSERT_FALSE(n2.has_value());
      last = n2.error();
      break;
    }
    files.push_back(data);
    ASSERT_LT(i, 200) << "the device never filled up";
  }
  EXPECT_EQ(last.err(), ENOSPC) << last.ToString();
  EXPECT_GT(files.size(), 30u);
  std::cout << files.size() << " files, last partial " << partial << " bytes\n";
  // Further allocation fails, and so does every operation that adds a name
  // (it would eat the reserve unlink and rmdir need: full_device_test.cc);
  // nothing half-made is left.
  EXPECT_ERRNO(WriteWhole(fs(), "/more", Pattern(B, 1)), ENOSPC);
  EXPECT_ERRNO(fs().GetStat("/more"), ENOENT);
  EXPECT_ERRNO(fs().Mkdir("/dir_when_full"), ENOSPC);
  EXPECT_ERRNO(fs().Rename("/f0", "/f0.moved"), ENOSPC);
  {
    ASSIGN_OR_FAIL(File x, fs().Open("/f" + std::to_string(files.size() - 1), O_RDWR));
    uint64_t size = Size(x);
    EXPECT_ERRNO(x.Fallocate(0, (size + B - 1) / B * B, B), ENOSPC);
    EXPECT_EQ(Size(x), size);
    EXPECT_ERRNO(x.Pwrite("a", 1, (size + B - 1) / B * B), ENOSPC);
    EXPECT_EQ(Size(x), size);
  }
  auto verify = [&] {
    for (size_t i = 0; i < files.size(); i++) {
      ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/f" + std::to_string(i)));
      EXPECT_TRUE(back == files[i]) << "file " << i << " damaged (size " << back.size() << " vs "
                                    << files[i].size() << ")";
    }
  };
  verify();
  ExpectFsckClean();
  verify();
  // Space is reusable after deleting.
  for (size_t i = 0; i < files.size(); i++) ASSERT_OK(fs().Unlink("/f" + std::to_string(i)));
  EXPECT_EQ(AllFreeBlocks(), all_free0) << "every block is back (free trees + node free list)";
  // statfs leaves out the node free list, whose level may differ now.
  EXPECT_NEAR(static_cast<double>(FreeBlocks()), static_cast<double>(free0),
              static_cast<double>(Allocator::kFreeListHigh - Allocator::kFreeListLow));
  auto big = Pattern(40 * kMiB, 77);
  ASSERT_OK(WriteWhole(fs(), "/big", big));
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/big"));
  EXPECT_TRUE(back == big);
  ExpectFsckClean();
}

// One write over many holes allocates many times in one transaction; B+tree
// node churn or a free-list give-back in between used to make the allocator
// refuse ("data allocation after a free in one transaction") and the write
// came back short with no error although the device had room.
TEST_F(IoTest, WriteOverManyHolesIsNotShort) {
  for (int round = 0; round < 4; round++) {
    File f = Create("/holes" + std::to_string(round));
    std::vector<uint8_t> blk(B, 0x11);
    const uint64_t kBlocks = 1500;
    for (uint64_t i = round % 2; i < kBlocks; i += 2) ASSERT_OK(f.Pwrite(blk.data(), B, i * B));
    auto data = Pattern(kBlocks * B + 100, 60 + round);
    uint64_t off = round * 17;
    ASSIGN_OR_FAIL(size_t n, f.Pwrite(data.data(), data.size(), off));
    EXPECT_EQ(n, data.size()) << "short write on a device with room";
    auto back = PreadAll(f, off, data.size());
    EXPECT_TRUE(back == data);
    // Fallocate over many holes as well.
    File g = Create("/fholes" + std::to_string(round));
    for (uint64_t i = 0; i < kBlocks; i += 2) ASSERT_OK(g.Pwrite(blk.data(), B, i * B));
    EXPECT_OK(g.Fallocate(round % 2 ? FALLOC_FL_KEEP_SIZE : 0, 0, kBlocks * B));
    EXPECT_EQ(Blocks512(g), kBlocks * 8);
  }
  ExpectFsckClean();
}

// ---- durability costs (the documented fence counts) -------------------------------------------

TEST_F(IoTest, FenceCounts) {
  File f = Create("/f");
  auto data = Pattern(3 * B, 1);
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  // An overwrite of allocated blocks: one fence, no transaction.
  uint64_t commits = ImplOf(*fs_)->journal()->commits();
  uint64_t f0 = Fences();
  ASSERT_OK(f.Pwrite(data.data(), 100, 10));
  EXPECT_EQ(Fences() - f0, 1u);
  EXPECT_EQ(ImplOf(*fs_)->journal()->commits(), commits);
  // A metadata operation: exactly one commit.
  f0 = Fences();
  ASSERT_OK(fs().Mkdir("/d"));
  EXPECT_EQ(Fences() - f0, Journal::kFencesPerCommit);
  EXPECT_EQ(ImplOf(*fs_)->journal()->commits(), commits + 1);
  // An allocating write: data fence + one commit.
  f0 = Fences();
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 10 * B));
  EXPECT_EQ(Fences() - f0, Journal::kFencesPerCommit + 1);
  // Fsync with no lazy state costs nothing; with lazy times, one commit.
  ASSERT_OK(f.Fsync());
  f0 = Fences();
  ASSERT_OK(f.Fsync());
  ASSERT_OK(f.Fdatasync());
  EXPECT_EQ(Fences() - f0, 0u);
  // (An overwrite's lazy times come from the coarse clock and never move
  // back: wait until that clock has passed the last precise stamp.)
  ASSIGN_OR_FAIL(Stat st, f.GetStat());
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > st.mtime.sec || (now.tv_sec == st.mtime.sec && now.tv_nsec > st.mtime.nsec)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_OK(f.Pwrite("x", 1, 0));
  f0 = Fences();
  ASSERT_OK(f.Fsync());
  EXPECT_EQ(Fences() - f0, Journal::kFencesPerCommit);
  // Reads and stats never fence.
  f0 = Fences();
  char buf[100];
  ASSERT_OK(f.Pread(buf, sizeof buf, 0));
  ASSERT_OK(fs().GetStat("/f"));
  ASSERT_OK(fs().ReadDir("/"));
  EXPECT_EQ(Fences() - f0, 0u);
}

// ---- randomized differential test ----------------------------------------------------------

TEST_F(IoTest, RandomOpsMatchModel) {
  std::mt19937_64 rng(20240611);
  const uint64_t kSpan = 3 * kMiB;
  std::vector<uint8_t> model;
  File f = Create("/r");
  auto rnd = [&](uint64_t n) { return n ? rng() % n : 0; };
  auto check = [&](const char* when) {
    ASSERT_EQ(Size(f), model.size()) << when;
    auto all = PreadAll(f, 0, model.size() + 10);
    ASSERT_EQ(all.size(), model.size()) << when;
    for (size_t i = 0; i < model.size(); i++) ASSERT_EQ(all[i], model[i]) << when << " byte " << i;
    ASSIGN_OR_FAIL(auto ext, f.Fiemap());
    uint64_t mapped = 0;
    for (const auto& e : ext) mapped += e.length;
    ASSERT_EQ(mapped / 512, Blocks512(f)) << when;
  };
  for (int step = 0; step < 600; step++) {
    int op = static_cast<int>(rnd(100));
    uint64_t off = rnd(kSpan);
    if (rnd(4) == 0) off = off / B * B;
    uint64_t len = 1 + rnd(rnd(3) == 0 ? 3 * B : 64 * 1024);
    if (op < 45) {  // pwrite
      auto d = Pattern(len, rng());
      ASSIGN_OR_FAIL(size_t n, f.Pwrite(d.data(), len, off));
      ASSERT_EQ(n, len);
      if (model.size() < off + len) model.resize(off + len, 0);
      std::copy(d.begin(), d.end(), model.begin() + off);
    } else if (op < 55) {  // truncate
      uint64_t nl = rnd(2) ? rnd(model.size() + 1) : rnd(kSpan);
      ASSERT_OK(f.Truncate(nl));
      model.resize(nl, 0);
    } else if (op < 65) {  // punch hole
      ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
      for (uint64_t i = off; i < std::min<uint64_t>(off + len, model.size()); i++) model[i] = 0;
    } else if (op < 72) {  // zero range
      bool keep = rnd(2);
      ASSERT_OK(f.Fallocate(FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0), off, len));
      for (uint64_t i = off; i < std::min<uint64_t>(off + len, model.size()); i++) model[i] = 0;
      if (!keep && model.size() < off + len) model.resize(off + len, 0);
    } else if (op < 80) {  // fallocate
      bool keep = rnd(2);
      ASSERT_OK(f.Fallocate(keep ? FALLOC_FL_KEEP_SIZE : 0, off, len));
      if (!keep && model.size() < off + len) model.resize(off + len, 0);
    } else if (op < 95) {  // read a range
      auto got = PreadAll(f, off, len);
      size_t want = off >= model.size() ? 0 : std::min<uint64_t>(len, model.size() - off);
      ASSERT_EQ(got.size(), want) << "step " << step;
      for (size_t i = 0; i < want; i++) ASSERT_EQ(got[i], model[off + i]) << "step " << step << " byte " << off + i;
    } else if (op < 97) {
      check("periodic");
    } else {  // remount
      ASSERT_OK(f.Close());
      Remount();
      ASSIGN_OR_FAIL(File g, fs().Open("/r", O_RDWR));
      f = std::move(g);
      check("after remount");
    }
  }
  check("end");
  ASSERT_OK(f.Close());
  ExpectFsckClean();
}

// ---- the in-core inode follows every change ---------------------------------------------------

TEST_F(IoTest, TwoHandlesSeeEachOthersWrites) {
  File a = Create("/f");
  ASSIGN_OR_FAIL(File b, fs().Open("/f", O_RDWR));
  ASSERT_OK(a.Pwrite("hello", 5, 0));
  EXPECT_EQ(Size(b), 5u);
  EXPECT_EQ(PreadStr(b, 0, 10), "hello");
  ASSERT_OK(b.Truncate(2));
  EXPECT_EQ(Size(a), 2u);
  ASSERT_OK(fs().Truncate("/f", 1));
  EXPECT_EQ(Size(a), 1u);
  EXPECT_EQ(fs().GetStat("/f")->size, 1u);
}

// Pread and the Pwrite fast path reuse an open inode's last extent
// (Inode::last_ext, valid for one write epoch of meta_mu_). A cached extent
// that outlived a change of the extent map would send an overwrite to blocks
// the file no longer owns (freed, then reused by another file) and let a read
// show them. Each step warms the cache, changes the map, then reads and
// writes through the same handle.
TEST_F(IoTest, CachedExtentNeverOutlivesAnExtentMapChange) {
  const uint64_t n = 64;
  File a = Create("/a");
  auto want = Pattern(n * B, 1);
  ASSERT_OK(a.Pwrite(want.data(), want.size(), 0));
  auto warm = [&](uint64_t blk) {  // an overwrite and a read of block blk
    auto x = Pattern(B, 100 + blk);
    ASSERT_OK(a.Pwrite(x.data(), B, blk * B));
    std::copy(x.begin(), x.end(), want.begin() + blk * B);
    EXPECT_TRUE(PreadAll(a, blk * B, B) == x);
  };
  auto overwrite = [&](uint64_t blk, uint64_t seed) {
    auto x = Pattern(B, seed);
    ASSERT_OK(a.Pwrite(x.data(), B, blk * B));
    std::copy(x.begin(), x.end(), want.begin() + blk * B);
  };

  // 1. Punch: the read sees the hole; the write allocates (one block) instead
  //    of landing in the freed blocks, which /b now reuses.
  warm(5);
  ASSERT_OK(a.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, n * B));
  std::fill(want.begin(), want.end(), 0);
  EXPECT_TRUE(PreadAll(a, 5 * B, B) == std::vector<uint8_t>(B, 0)) << "read a punched block";
  auto bdata = Pattern(n * B, 2);
  ASSERT_OK(WriteWhole(fs(), "/b", bdata));
  overwrite(5, 3);
  EXPECT_EQ(Blocks512(a), B / 512) << "the write into the hole allocated";
  EXPECT_TRUE(PreadAll(a, 0, n * B) == want);
  ASSIGN_OR_FAIL(auto b_now, ReadWhole(fs(), "/b"));
  EXPECT_TRUE(b_now == bdata) << "a write to /a reached /b's blocks";

  // 2. Truncate down and up again: the same, with /c reusing the blocks.
  overwrite(6, 4);  // block 6 mapped next to block 5 (one extent, cached)
  warm(6);
  ASSERT_OK(a.Truncate(0));
  ASSERT_OK(a.Truncate(n * B));
  std::fill(want.begin(), want.end(), 0);
  auto cdata = Pattern(n * B, 5);
  ASSERT_OK(WriteWhole(fs(), "/c", cdata));
  EXPECT_TRUE(PreadAll(a, 6 * B, B) == std::vector<uint8_t>(B, 0)) << "read a truncated block";
  overwrite(6, 6);
  EXPECT_EQ(Blocks512(a), B / 512);
  EXPECT_TRUE(PreadAll(a, 0, n * B) == want);
  ASSIGN_OR_FAIL(auto c_now, ReadWhole(fs(), "/c"));
  EXPECT_TRUE(c_now == cdata) << "a write to /a reached /c's blocks";

  // 3. Filling holes around the cached extent (fallocate, then a write that
  //    allocates): the new blocks are used, the old one still is.
  warm(6);
  ASSERT_OK(a.Fallocate(FALLOC_FL_KEEP_SIZE, 0, 4 * B));
  overwrite(2, 7);
  overwrite(40, 8);
  warm(6);
  EXPECT_TRUE(PreadAll(a, 0, n * B) == want);

  ASSERT_OK(a.Close());
  ExpectFsckClean();
  ASSIGN_OR_FAIL(auto back, ReadWhole(fs(), "/a"));
  EXPECT_TRUE(back == want);
  ASSIGN_OR_FAIL(b_now, ReadWhole(fs(), "/b"));
  EXPECT_TRUE(b_now == bdata);
  ASSIGN_OR_FAIL(c_now, ReadWhole(fs(), "/c"));
  EXPECT_TRUE(c_now == cdata);
}

// The same under concurrency: overwrites and reads of /a race with punches of
// /a whose freed blocks other files reuse at once; none of those files may
// ever see a byte meant for /a.
TEST_F(IoTest, ConcurrentOverwritesNeverReachBlocksAPunchFreed) {
  const uint64_t n = 64;
  File a = Create("/a");
  ASSERT_OK(a.Pwrite(Pattern(n * B, 1).data(), n * B, 0));
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> io;
  for (int t = 0; t < 3; t++) {
    io.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf(B, static_cast<uint8_t>(0xA0 + t));
      while (!stop.load()) {
        uint64_t blk = rng() % n;
        auto r = t < 2 ? a.Pwrite(buf.data(), B, blk * B) : a.Pread(buf.data(), B, blk * B);
        if (!r.has_value() || *r != B) errors++;
      }
    });
  }
  std::mt19937_64 rng(99);
  const int kFiles = 100;
  for (int i = 0; i < kFiles; i++) {
    uint64_t blk = rng() % (n - 8);
    ASSERT_OK(a.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, blk * B, 8 * B));
    ASSERT_OK(WriteWhole(fs(), "/b" + std::to_string(i), std::vector<uint8_t>(8 * B, 0xBB)));
  }
  stop = true;
  for (auto& th : io) th.join();
  EXPECT_EQ(errors.load(), 0);
  for (int i = 0; i < kFiles; i++) {
    ASSIGN_OR_FAIL(auto got, ReadWhole(fs(), "/b" + std::to_string(i)));
    ASSERT_EQ(FirstNot(got.data(), got.size(), 0xBB), -1) << "/b" << i << " got a write meant for /a";
  }
  ASSERT_OK(a.Close());
  ExpectFsckClean();
}

}  // namespace
}  // namespace udax
