// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The POSIX file helpers against a real temp directory: each helper's success and error cases,
// and the atomic write's mode bits and crash simulation (the fault hook at every step).
#include "src/base/file_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hml {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hml_file_util_test_XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  static void Write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
  }

  std::string dir_;
};

// The status of a missing path: kNotFound, naming the path.
void ExpectNotFoundNaming(const Status& s, const std::string& path) {
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(std::string(s.message()), HasSubstr("'" + path + "'"));
}

TEST_F(FileUtilTest, FileSize) {
  Write(Path("f"), "hello");
  Result<int64_t> size = FileSize(Path("f"));
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 5);
  Write(Path("empty"), "");
  EXPECT_EQ(*FileSize(Path("empty")), 0);

  ExpectNotFoundNaming(FileSize(Path("missing")).status(), Path("missing"));
  const Status dir = FileSize(dir_).status();
  EXPECT_EQ(dir.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(dir.message()), HasSubstr("'" + dir_ + "' is not a regular file"));
}

TEST_F(FileUtilTest, AppendToFileCreatesThenAppends) {
  ASSERT_TRUE(AppendToFile(Path("log"), "ab").ok());
  ASSERT_TRUE(AppendToFile(Path("log"), std::string("c\0d", 3)).ok());
  ASSERT_TRUE(AppendToFile(Path("log"), "").ok());
  EXPECT_EQ(Read(Path("log")), std::string("abc\0d", 5));

  const std::string missing = Path("no/such/dir/log");
  const Status s = AppendToFile(missing, "x");
  ExpectNotFoundNaming(s, missing);
  EXPECT_THAT(std::string(s.message()), HasSubstr("for appending"));
}

TEST_F(FileUtilTest, RemoveFile) {
  Write(Path("f"), "x");
  ASSERT_TRUE(RemoveFile(Path("f")).ok());
  EXPECT_FALSE(std::filesystem::exists(Path("f")));
  EXPECT_TRUE(RemoveFile(Path("f")).ok()) << "absent is success";

  // A directory is not a file: the error names the operation and the path.
  ASSERT_TRUE(MakeDir(Path("d")).ok());
  const Status s = RemoveFile(Path("d"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("remove '" + Path("d") + "'"));
  EXPECT_TRUE(DirExists(Path("d")));
}

TEST_F(FileUtilTest, DirExists) {
  Write(Path("f"), "x");
  EXPECT_TRUE(DirExists(dir_));
  EXPECT_FALSE(DirExists(Path("f")));
  EXPECT_FALSE(DirExists(Path("missing")));
}

TEST_F(FileUtilTest, MakeDirSetsCreatedOnlyWhenItCreated) {
  bool created = true;
  ASSERT_TRUE(MakeDir(Path("d"), 0700, &created).ok());
  EXPECT_TRUE(created);
  EXPECT_TRUE(DirExists(Path("d")));
  EXPECT_EQ(*FileMode(Path("d")), 0700);
  ASSERT_TRUE(MakeDir(Path("d"), 0700, &created).ok()) << "existing directory is success";
  EXPECT_FALSE(created);
  ASSERT_TRUE(MakeDir(Path("d")).ok()) << "created is optional";
}

TEST_F(FileUtilTest, MakeDirErrors) {
  bool created = true;
  const std::string nested = Path("a/b");
  ExpectNotFoundNaming(MakeDir(nested, 0755, &created), nested);
  EXPECT_FALSE(created);

  Write(Path("f"), "x");
  const Status file = MakeDir(Path("f"));
  EXPECT_EQ(file.code(), StatusCode::kAlreadyExists) << file.ToString();
  EXPECT_THAT(std::string(file.message()), HasSubstr("create directory '" + Path("f") + "'"));

  EXPECT_EQ(MakeDir("").code(), StatusCode::kInvalidArgument);
}

TEST_F(FileUtilTest, MakeDirsCreatesNestedDirectories) {
  bool created = false;
  const std::string nested = Path("a/b/c");
  ASSERT_TRUE(MakeDirs(nested, 0750, &created).ok());
  EXPECT_TRUE(created);
  EXPECT_TRUE(DirExists(nested));
  EXPECT_EQ(*FileMode(Path("a")), 0750) << "parents get the mode too";
  EXPECT_EQ(*FileMode(Path("a/b")), 0750);

  ASSERT_TRUE(MakeDirs(nested, 0750, &created).ok());
  EXPECT_FALSE(created) << "already there";
  ASSERT_TRUE(MakeDirs(Path("a/b/c/d/"), 0755, &created).ok()) << "a trailing slash is fine";
  EXPECT_TRUE(created);
  EXPECT_TRUE(DirExists(Path("a/b/c/d")));
}

TEST_F(FileUtilTest, MakeDirsErrors) {
  Write(Path("f"), "x");
  bool created = true;
  // A file in the way of a parent: the error names that parent.
  const Status s = MakeDirs(Path("f/sub/dir"), 0755, &created);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_THAT(std::string(s.message()), HasSubstr("create directory '" + Path("f") + "'"));
  EXPECT_FALSE(created);
  EXPECT_FALSE(std::filesystem::exists(Path("f/sub")));

  const Status file = MakeDirs(Path("f"));
  EXPECT_EQ(file.code(), StatusCode::kAlreadyExists) << file.ToString();
  EXPECT_EQ(MakeDirs("").code(), StatusCode::kInvalidArgument);
}

TEST_F(FileUtilTest, RemoveEmptyDir) {
  ASSERT_TRUE(MakeDir(Path("empty")).ok());
  ASSERT_TRUE(RemoveEmptyDir(Path("empty")).ok());
  EXPECT_FALSE(DirExists(Path("empty")));
  EXPECT_TRUE(RemoveEmptyDir(Path("empty")).ok()) << "absent is success";

  ASSERT_TRUE(MakeDir(Path("full")).ok());
  Write(Path("full/f"), "x");
  const Status s = RemoveEmptyDir(Path("full"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_THAT(std::string(s.message()), HasSubstr("remove directory '" + Path("full") + "'"));
  EXPECT_EQ(Read(Path("full/f")), "x");
}

TEST_F(FileUtilTest, RenameFile) {
  Write(Path("from"), "new");
  Write(Path("to"), "old");
  ASSERT_TRUE(RenameFile(Path("from"), Path("to")).ok());
  EXPECT_EQ(Read(Path("to")), "new");
  EXPECT_FALSE(std::filesystem::exists(Path("from")));

  const Status s = RenameFile(Path("from"), Path("to"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("rename '" + Path("from") + "' to '" + Path("to") + "'"));
  EXPECT_EQ(Read(Path("to")), "new");
}

TEST_F(FileUtilTest, ListDirIsSortedWithoutDots) {
  Result<std::vector<std::string>> empty = ListDir(dir_);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_THAT(*empty, IsEmpty());

  for (const char* name : {"zeta", "alpha", "Beta", "m.1", "m.10", "m.2"}) Write(Path(name), "");
  ASSERT_TRUE(MakeDir(Path("sub")).ok());
  Result<std::vector<std::string>> names = ListDir(dir_);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_THAT(*names, ElementsAre("Beta", "alpha", "m.1", "m.10", "m.2", "sub", "zeta"));

  ExpectNotFoundNaming(ListDir(Path("missing")).status(), Path("missing"));
  Write(Path("f"), "x");
  ExpectNotFoundNaming(ListDir(Path("f")).status(), Path("f"));  // ENOTDIR
}

TEST_F(FileUtilTest, SyncDir) {
  EXPECT_TRUE(SyncDir(dir_).ok());
  ExpectNotFoundNaming(SyncDir(Path("missing")), Path("missing"));
  Write(Path("f"), "x");
  ExpectNotFoundNaming(SyncDir(Path("f")), Path("f"));  // O_DIRECTORY on a file: ENOTDIR
}

TEST_F(FileUtilTest, FileMode) {
  Write(Path("f"), "x");
  ASSERT_EQ(::chmod(Path("f").c_str(), 0640), 0);
  Result<int> mode = FileMode(Path("f"));
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(*mode, 0640);
  ExpectNotFoundNaming(FileMode(Path("missing")).status(), Path("missing"));
}

TEST_F(FileUtilTest, WriteFileAtomicReplacesAndLeavesNoTemp) {
  const std::string path = Path("f");
  ASSERT_TRUE(WriteFileAtomic(path, std::string("a\0b", 3), {}).ok());
  EXPECT_EQ(Read(path), std::string("a\0b", 3));
  ASSERT_TRUE(WriteFileAtomic(path, "", {}).ok());
  EXPECT_EQ(Read(path), "");
  ASSERT_TRUE(WriteFileAtomic(path, "new", {}).ok());
  EXPECT_EQ(Read(path), "new");
  EXPECT_THAT(*ListDir(dir_), ElementsAre("f"));
}

TEST_F(FileUtilTest, WriteFileAtomicSetsModeBitsExactly) {
  const mode_t old_umask = ::umask(0277);  // would clear the owner's write bit and all others'
  AtomicWriteOptions secret;
  secret.mode = 0600;
  const Status s = WriteFileAtomic(Path("secret"), "k", secret);
  AtomicWriteOptions shared;
  shared.mode = 0664;
  const Status t = WriteFileAtomic(Path("shared"), "s", shared);
  const Status d = WriteFileAtomic(Path("default"), "d", AtomicWriteOptions{});
  ::umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(t.ok()) << t.ToString();
  ASSERT_TRUE(d.ok()) << d.ToString();
  EXPECT_EQ(*FileMode(Path("secret")), 0600);
  EXPECT_EQ(*FileMode(Path("shared")), 0664);
  EXPECT_EQ(*FileMode(Path("default")), 0644);

  // Replacing a file gives the new mode, not the old file's.
  ASSERT_TRUE(WriteFileAtomic(Path("shared"), "s2", secret).ok());
  EXPECT_EQ(*FileMode(Path("shared")), 0600);
}

TEST_F(FileUtilTest, WriteFileAtomicTempPath) {
  AtomicWriteOptions fixed;
  fixed.temp_suffix = ".tmp";
  EXPECT_EQ(AtomicWriteTempPath("/d/f", fixed), "/d/f.tmp");
  EXPECT_EQ(AtomicWriteTempPath("/d/f", {}), "/d/f.tmp." + std::to_string(::getpid()));
}

TEST_F(FileUtilTest, WriteFileAtomicDoesNotWriteThroughALinkAtTheTempName) {
  const std::string path = Path("f");
  AtomicWriteOptions options;
  options.temp_suffix = ".tmp";
  Write(Path("victim"), "untouched");
  std::filesystem::create_symlink(Path("victim"), Path("f.tmp"));
  ASSERT_TRUE(WriteFileAtomic(path, "data", options).ok());
  EXPECT_EQ(Read(path), "data");
  EXPECT_EQ(Read(Path("victim")), "untouched");
  EXPECT_FALSE(std::filesystem::is_symlink(path));
}

TEST_F(FileUtilTest, WriteFileAtomicErrorsNameThePathAndLeaveNoTemp) {
  const std::string path = Path("no/such/dir/f");
  const Status s = WriteFileAtomic(path, "x", {});
  ExpectNotFoundNaming(s, AtomicWriteTempPath(path, {}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("create '"));

  // The target is a non-empty directory: the rename fails, the temp file is deleted.
  ASSERT_TRUE(MakeDir(Path("d")).ok());
  Write(Path("d/inside"), "x");
  const Status r = WriteFileAtomic(Path("d"), "x", {});
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.message()), HasSubstr("rename '"));
  EXPECT_THAT(std::string(r.message()), HasSubstr("' to '" + Path("d") + "'"));
  EXPECT_THAT(*ListDir(dir_), ElementsAre("d"));
}

// A fault at each step stops the write as a crash would: the old file is intact and the temp
// file is left (holding half the data after "write_temp", all of it after the later steps), for
// the caller to clean. Steps run in order and carry the prefix.
class FileUtilFaultTest : public FileUtilTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(FileUtilFaultTest, FaultLeavesOldFileAndTemp) {
  const std::string step = GetParam();
  const std::string path = Path("state");
  const std::string data = "0123456789";
  Write(path, "old contents");

  std::vector<std::string> seen;
  AtomicWriteOptions options;
  options.temp_suffix = ".tmp";
  options.step_prefix = "switch_";
  options.fault = [&](std::string_view s) {
    seen.emplace_back(s);
    return s == "switch_" + step ? UnavailableError("simulated crash at " + std::string(s))
                                 : Status::Ok();
  };
  const Status s = WriteFileAtomic(path, data, options);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << "the hook's status is returned as is";
  EXPECT_EQ(s.message(), "simulated crash at switch_" + step);

  EXPECT_EQ(Read(path), "old contents");
  const std::string tmp = AtomicWriteTempPath(path, options);
  ASSERT_TRUE(std::filesystem::exists(tmp)) << "no crash leftover";
  EXPECT_EQ(Read(tmp), step == "write_temp" ? "01234" : data);
  const std::vector<std::string> all = {"switch_write_temp", "switch_fsync", "switch_rename"};
  std::vector<std::string> want;
  for (const std::string& a : all) {
    want.push_back(a);
    if (a == "switch_" + step) break;
  }
  EXPECT_EQ(seen, want);

  // The caller cleans the leftover; the next write succeeds over it.
  ASSERT_TRUE(RemoveFile(tmp).ok());
  EXPECT_THAT(*ListDir(dir_), ElementsAre("state"));
  Write(tmp, "stale leftover");
  options.fault = nullptr;
  ASSERT_TRUE(WriteFileAtomic(path, data, options).ok());
  EXPECT_EQ(Read(path), data);
  EXPECT_THAT(*ListDir(dir_), ElementsAre("state"));
}

INSTANTIATE_TEST_SUITE_P(Steps, FileUtilFaultTest,
                         ::testing::Values("write_temp", "fsync", "rename"));

TEST_F(FileUtilTest, FileLockIsExclusiveUntilReleased) {
  const std::string path = Path("registry.lock");
  Result<FileLock> first = FileLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<FileLock> second = FileLock::Acquire(path);  // a new open file description: conflicts
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("'" + path + "'"));

  { FileLock moved = std::move(*first); }  // released with the moved-to lock
  EXPECT_TRUE(FileLock::Acquire(path).ok());

  ExpectNotFoundNaming(FileLock::Acquire(Path("no/dir/x.lock")).status(), Path("no/dir/x.lock"));
}

}  // namespace
}  // namespace hml
