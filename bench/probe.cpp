#include "probe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bench {

std::int64_t now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

template <typename T>
std::optional<T> number_in(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  T value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  return value;
}

// The value after "Key:" in a /proc file of "Key: value" lines.
std::optional<long> field(const std::string& text, std::string_view key) {
  std::size_t at = 0;
  while ((at = text.find(key, at)) != std::string::npos) {
    if ((at == 0 || text[at - 1] == '\n') && text.compare(at + key.size(), 1, ":") == 0)
      return number_in<long>(std::string_view(text).substr(at + key.size() + 1));
    at += key.size();
  }
  return std::nullopt;
}

}  // namespace

std::optional<pid_t> read_pid(const std::string& path) {
  std::string text = slurp(path);
  auto pid = number_in<pid_t>(text);
  if (!pid || *pid <= 1) return std::nullopt;
  return pid;
}

std::optional<pid_t> lock_holder(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct flock query {};
  query.l_type = F_WRLCK;
  query.l_whence = SEEK_SET;
  int answer = fcntl(fd, F_GETLK, &query);
  close(fd);
  if (answer != 0 || query.l_type == F_UNLCK) return std::nullopt;
  return query.l_pid;
}

bool alive(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

std::optional<pid_t> parent_of(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 4 >= stat.size()) return std::nullopt;
  return number_in<pid_t>(std::string_view(stat).substr(paren + 4));
}

std::string exe_of(pid_t pid) {
  std::error_code error;
  auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", error);
  return error ? std::string{} : target.string();
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> children;
  std::error_code error;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::istringstream list(slurp(task.path().string() + "/children"));
    pid_t child = 0;
    while (list >> child) children.push_back(child);
  }
  return children;
}

std::vector<pid_t> tree_of(pid_t pid) {
  std::vector<pid_t> tree{pid};
  for (std::size_t next = 0; next < tree.size(); ++next)
    for (pid_t child : children_of(tree[next])) tree.push_back(child);
  return tree;
}

std::optional<Memory> memory_of(pid_t pid) {
  std::string text = slurp("/proc/" + std::to_string(pid) + "/smaps_rollup");
  auto pss = field(text, "Pss");
  auto rss = field(text, "Rss");
  auto clean = field(text, "Private_Clean");
  auto dirty = field(text, "Private_Dirty");
  if (!pss || !rss || !clean || !dirty) return std::nullopt;
  return Memory{*pss, *rss, *clean + *dirty};
}

std::optional<long> context_switches(pid_t pid) {
  std::optional<long> total;
  std::error_code error;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::string text = slurp(task.path().string() + "/status");
    auto voluntary = field(text, "voluntary_ctxt_switches");
    auto involuntary = field(text, "nonvoluntary_ctxt_switches");
    if (voluntary && involuntary) total = total.value_or(0) + *voluntary + *involuntary;
  }
  return total;
}

}  // namespace bench
