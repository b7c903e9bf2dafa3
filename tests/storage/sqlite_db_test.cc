// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/storage/sqlite_db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace hml::storage {
namespace {

using ::testing::HasSubstr;

class SqliteDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/sqlite_db_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/test.db";
    options_.label = "test database";
    options_.busy_timeout_ms = 0;  // lock conflicts fail at once
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Opens path_ and creates table t (x UNIQUE, y NOT NULL).
  SqliteDb OpenWithTable() {
    Result<SqliteDb> db = SqliteDb::Open(path_, options_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    SqliteDb out = std::move(*db);
    EXPECT_TRUE(
        out.Exec("CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE, y TEXT NOT NULL)", "create t")
            .ok());
    return out;
  }

  // The number of rows of t, read through `db`.
  int64_t CountRows(SqliteDb& db) {
    StatementPtr count;
    EXPECT_TRUE(db.Prepare("SELECT count(*) FROM t", &count).ok());
    Result<bool> row = db.Step(count.get(), "count");
    EXPECT_TRUE(row.ok() && *row);
    return sqlite3_column_int64(count.get(), 0);
  }

  Status Insert(SqliteDb& db, int64_t x, std::string_view y) {
    StatementPtr insert;
    HML_RETURN_IF_ERROR(db.Prepare("INSERT INTO t (x, y) VALUES (?1, ?2)", &insert));
    const std::string what = "insert row " + std::to_string(x);
    HML_RETURN_IF_ERROR(db.BindInt64(insert.get(), 1, x, what));
    HML_RETURN_IF_ERROR(db.BindText(insert.get(), 2, y, what));
    return db.Run(insert.get(), what);
  }

  std::string dir_;
  std::string path_;
  SqliteOptions options_;
};

TEST(SqliteStatusTest, NamesTheOperationSqlitesMessageAndTheDatabase) {
  const Status s =
      SqliteStatus(nullptr, SQLITE_BUSY, "registry database", "/r/registry.db", "add model 'm'");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(std::string(s.message()),
            "add model 'm': database is locked (registry database '/r/registry.db' is locked; "
            "retry)");
}

TEST(SqliteStatusTest, MapsResultCodesToStatusCodes) {
  const auto code = [](int rc) { return SqliteStatus(nullptr, rc, "db", "/p", "op").code(); };
  EXPECT_EQ(code(SQLITE_LOCKED), StatusCode::kUnavailable);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_UNIQUE), StatusCode::kAlreadyExists);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_PRIMARYKEY), StatusCode::kAlreadyExists);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_CHECK), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_NOTNULL), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SQLITE_CONSTRAINT_TRIGGER), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SQLITE_NOTADB), StatusCode::kDataLoss);
  EXPECT_EQ(code(SQLITE_CORRUPT), StatusCode::kDataLoss);
  EXPECT_EQ(code(SQLITE_CANTOPEN), StatusCode::kNotFound);
  EXPECT_EQ(code(SQLITE_READONLY), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(SQLITE_FULL), StatusCode::kResourceExhausted);
  EXPECT_EQ(code(SQLITE_IOERR_WRITE), StatusCode::kInternal);
  // Codes without a mapping keep SQLite's name for the code in the message.
  EXPECT_THAT(std::string(SqliteStatus(nullptr, SQLITE_IOERR_WRITE, "db", "/p", "op").message()),
              HasSubstr("disk I/O error"));
}

TEST_F(SqliteDbTest, AConstraintViolationNamesTheOperationAndSqlitesMessage) {
  SqliteDb db = OpenWithTable();
  ASSERT_TRUE(Insert(db, 1, "a").ok());
  const Status dup = Insert(db, 1, "b");
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("insert row 1: UNIQUE constraint failed: t.x"));
  EXPECT_THAT(std::string(dup.message()), HasSubstr("test database '" + path_ + "'"));
}

TEST_F(SqliteDbTest, BindTextOfAnEmptyViewBindsAnEmptyStringNotNull) {
  SqliteDb db = OpenWithTable();
  // A default string_view has a null data pointer; y is NOT NULL.
  ASSERT_TRUE(Insert(db, 1, std::string_view()).ok());
  EXPECT_EQ(CountRows(db), 1);
}

TEST_F(SqliteDbTest, ScopedResetEndsTheReadTransactionOfAnUnfinishedSelect) {
  SqliteDb reader = OpenWithTable();
  ASSERT_TRUE(Insert(reader, 1, "a").ok());
  ASSERT_TRUE(Insert(reader, 2, "b").ok());
  Result<SqliteDb> writer = SqliteDb::Open(path_, options_);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();

  StatementPtr select;
  ASSERT_TRUE(reader.Prepare("SELECT x FROM t WHERE x >= ?1 ORDER BY x", &select).ok());
  {
    ScopedReset reset(select.get());
    ASSERT_TRUE(reader.BindInt64(select.get(), 1, 1, "select").ok());
    Result<bool> row = reader.Step(select.get(), "select");
    ASSERT_TRUE(row.ok() && *row);  // one row read, one left: the read transaction stays open
    ASSERT_TRUE(Insert(*writer, 3, "c").ok());
    // The open read transaction pins the snapshot taken before the write.
    EXPECT_EQ(CountRows(reader), 2);
  }
  EXPECT_EQ(sqlite3_stmt_busy(select.get()), 0);
  EXPECT_EQ(CountRows(reader), 3);
  // The binding was cleared too: x >= NULL matches nothing.
  Result<bool> row = reader.Step(select.get(), "select");
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
  sqlite3_reset(select.get());
}

TEST_F(SqliteDbTest, ReadAllReturnsEveryRowInOrderOrTheFirstError) {
  SqliteDb db = OpenWithTable();
  ASSERT_TRUE(Insert(db, 2, "b").ok());
  ASSERT_TRUE(Insert(db, 1, "a").ok());
  StatementPtr select;
  ASSERT_TRUE(db.Prepare("SELECT y FROM t ORDER BY x", &select).ok());
  {
    ScopedReset reset(select.get());
    Result<std::vector<std::string>> ys =
        db.ReadAll(select.get(), "list t", [](sqlite3_stmt* row) { return ColumnText(row, 0); });
    ASSERT_TRUE(ys.ok()) << ys.status().ToString();
    EXPECT_EQ(*ys, (std::vector<std::string>{"a", "b"}));
  }
  // The second row fails (abs() of the smallest int64 overflows): no partial list comes back.
  StatementPtr failing;
  ASSERT_TRUE(db.Prepare("SELECT CASE WHEN x < 2 THEN x ELSE abs(-9223372036854775807 - 1) END "
                         "FROM t ORDER BY x",
                         &failing)
                  .ok());
  ScopedReset reset(failing.get());
  Result<std::vector<int64_t>> xs =
      db.ReadAll(failing.get(), "list x",
                 [](sqlite3_stmt* row) -> int64_t { return sqlite3_column_int64(row, 0); });
  ASSERT_FALSE(xs.ok());
  EXPECT_THAT(std::string(xs.status().message()), HasSubstr("list x: integer overflow"));
}

TEST_F(SqliteDbTest, InTransactionCommitsWhenTheBodySucceeds) {
  SqliteDb db = OpenWithTable();
  const Status s = db.InTransaction("add two", [&]() -> Status {
    HML_RETURN_IF_ERROR(Insert(db, 1, "a"));
    EXPECT_TRUE(db.InTransactionNow());
    return Insert(db, 2, "b");
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(db.InTransactionNow());
  EXPECT_EQ(CountRows(db), 2);
}

TEST_F(SqliteDbTest, InTransactionRollsBackWhenTheBodyFails) {
  SqliteDb db = OpenWithTable();
  const Status s = db.InTransaction("add two", [&]() -> Status {
    HML_RETURN_IF_ERROR(Insert(db, 1, "a"));
    return FailedPreconditionError("body gave up");
  });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(s.message()), "body gave up");  // the body's error, not ROLLBACK's
  EXPECT_FALSE(db.InTransactionNow());
  EXPECT_EQ(CountRows(db), 0);
}

TEST_F(SqliteDbTest, InTransactionRollsBackEarlierWritesWhenALaterStatementFails) {
  SqliteDb db = OpenWithTable();
  const Status s = db.InTransaction("add dup", [&]() -> Status {
    HML_RETURN_IF_ERROR(Insert(db, 1, "a"));
    return Insert(db, 1, "b");
  });
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(db.InTransactionNow());
  EXPECT_EQ(CountRows(db), 0);
}

TEST_F(SqliteDbTest, BeginFailsAsUnavailableWhileAnotherConnectionWrites) {
  SqliteDb db = OpenWithTable();
  Result<SqliteDb> other = SqliteDb::Open(path_, options_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->Exec("BEGIN IMMEDIATE", "hold the write lock").ok());
  bool body_ran = false;
  const Status s = db.InTransaction("add one", [&]() -> Status {
    body_ran = true;
    return Status::Ok();
  });
  EXPECT_FALSE(body_ran);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("add one: begin transaction: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("is locked; retry"));
  ASSERT_TRUE(other->Exec("ROLLBACK", "release").ok());
}

TEST_F(SqliteDbTest, OpenRefusesAFileThatIsNotASqliteDatabase) {
  std::ofstream(path_) << "this is not a database, but it is long enough to have a header......"
                          "..............................................................";
  Result<SqliteDb> db = SqliteDb::Open(path_, options_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(db.status().message()), HasSubstr("test database '" + path_ + "'"));
}

TEST_F(SqliteDbTest, OpenInAMissingDirectoryIsNotFound) {
  Result<SqliteDb> db = SqliteDb::Open(dir_ + "/missing/test.db", options_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(db.status().message()), HasSubstr(dir_ + "/missing/test.db"));
}

TEST_F(SqliteDbTest, OpenEnablesWalAndTheRequestedPragmas) {
  options_.foreign_keys = true;
  options_.secure_delete = true;
  Result<SqliteDb> db = SqliteDb::Open(path_, options_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const auto pragma = [&](const char* sql) {
    StatementPtr stmt;
    EXPECT_TRUE(db->Prepare(sql, &stmt).ok());
    Result<bool> row = db->Step(stmt.get(), sql);
    EXPECT_TRUE(row.ok() && *row);
    return ColumnText(stmt.get(), 0);
  };
  EXPECT_EQ(pragma("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(pragma("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(pragma("PRAGMA secure_delete"), "1");
}

TEST_F(SqliteDbTest, CreateModeAppliesToANewFile) {
  options_.create_mode = 0600;
  {
    SqliteDb db = OpenWithTable();
    ASSERT_TRUE(Insert(db, 1, "a").ok());
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((path_ + "-wal").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
}

TEST_F(SqliteDbTest, OptionsAreValidated) {
  options_.label = "";
  EXPECT_EQ(SqliteDb::Open(path_, options_).status().code(), StatusCode::kInvalidArgument);
  options_.label = "x";
  options_.busy_timeout_ms = -1;
  EXPECT_EQ(SqliteDb::Open(path_, options_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(SqliteDbTest, EnsureSchemaCreatesOnceAndRefusesOtherVersions) {
  constexpr char kSchema[] = "CREATE TABLE s (a INTEGER);";
  {
    Result<SqliteDb> db = SqliteDb::Open(path_, options_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(EnsureSchema(*db, 2, kSchema).ok());
    // Again on the same file: the version matches, the schema is not run twice.
    const Status again = EnsureSchema(*db, 2, kSchema);
    EXPECT_TRUE(again.ok()) << again.ToString();
  }
  Result<SqliteDb> db = SqliteDb::Open(path_, options_);
  ASSERT_TRUE(db.ok());
  const Status older_build = EnsureSchema(*db, 1, kSchema);
  EXPECT_EQ(older_build.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(older_build.message()),
            "test database '" + path_ +
                "' has schema version 2, this build reads version 1: it was written by a newer "
                "build");
  const Status newer_build = EnsureSchema(*db, 3, kSchema);
  EXPECT_EQ(newer_build.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(newer_build.message()), HasSubstr("no migration from that version"));
  EXPECT_FALSE(db->InTransactionNow());
}

TEST_F(SqliteDbTest, EnsureSchemaLeavesNothingBehindWhenTheSchemaFails) {
  Result<SqliteDb> db = SqliteDb::Open(path_, options_);
  ASSERT_TRUE(db.ok());
  const Status s = EnsureSchema(*db, 1, "CREATE TABLE s (a INTEGER); CREATE TABLE s (b);");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("create schema version 1: table s already exists"));
  EXPECT_FALSE(db->InTransactionNow());
  // Rolled back as a whole: a second attempt with a good schema starts from nothing.
  EXPECT_TRUE(EnsureSchema(*db, 1, "CREATE TABLE s (a INTEGER);").ok());
}

}  // namespace
}  // namespace hml::storage
