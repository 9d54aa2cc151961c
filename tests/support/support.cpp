#include "support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace dktest {

namespace {
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
}
}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && base[0] == '/' ? base : "/tmp") + "/daemonkit-test.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string CommandResult::describe() const {
  std::ostringstream o;
  o << "exit " << exit_code;
  if (term_signal != 0) o << " (signal " << term_signal << ")";
  o << "\n--- stdout:\n" << out << "--- stderr:\n" << err;
  return o.str();
}

CommandResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) std::abort();
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::string in_path = options.stdin_path.value_or("/dev/null");
  // The environment is built before fork: the child of a threaded test must
  // not allocate.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& x : options.extra_env) replaced |= x.rfind(name + "=", 0) == 0;
    if (!replaced) env.push_back(std::move(entry));
  }
  env.insert(env.end(), options.extra_env.begin(), options.extra_env.end());
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    if (options.new_session) ::setsid();
    if (options.cwd && ::chdir(options.cwd->c_str()) < 0) _exit(126);
    int in = options.stdin_fd >= 0 ? options.stdin_fd : ::open(in_path.c_str(), O_RDONLY);
    if (options.new_session && options.stdin_fd >= 0 && ::isatty(in)) ::ioctl(in, TIOCSCTTY, 0);
    ::dup2(in, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : options.close_fds) ::close(fd);
    for (int s : options.ignore_signals) ::signal(s, SIG_IGN);
    ::execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  CommandResult r;
  ProcessGuard guard(pid);
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_count = 2;
  while (open_count > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    int n = ::poll(fds, 2, static_cast<int>(left));
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  if (!guard.wait_exit(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
          deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration(0))))) {
    r.err += "\n[test harness: command timed out and was killed]\n";
    guard.kill_now();
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) == pid) {
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  }
  return r;
}

std::string heartbeat_path() {
  return DKTEST_HEARTBEAT;
}
std::string daemonkit_path() {
  return DKTEST_DAEMONKIT;
}
std::string payload_path(const std::string& name) {
  return std::string(DKTEST_PAYLOADS) + "/" + name;
}

std::optional<ProcStat> read_stat(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(close + 2));
  ProcStat s;
  in >> s.state >> s.ppid >> s.pgrp >> s.session >> s.tty_nr;
  if (!in) return std::nullopt;
  return s;
}

std::map<std::string, std::string> read_status(pid_t pid) {
  std::map<std::string, std::string> m;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    m[line.substr(0, colon)] = value;
  }
  return m;
}

std::map<int, std::string> fd_targets(pid_t pid) {
  std::map<int, std::string> m;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec);
    m[std::stoi(e.path().filename().string())] = ec ? "?" : target.string();
  }
  return m;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

bool alive(pid_t pid) {
  auto st = read_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

ProcessGuard::ProcessGuard(pid_t pid) : pid_(pid), pidfd_(open_pidfd(pid)) {}

ProcessGuard::ProcessGuard(ProcessGuard&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)), pidfd_(std::exchange(other.pidfd_, -1)) {}

ProcessGuard& ProcessGuard::operator=(ProcessGuard&& other) noexcept {
  if (this != &other) {
    this->~ProcessGuard();
    pid_ = std::exchange(other.pid_, 0);
    pidfd_ = std::exchange(other.pidfd_, -1);
  }
  return *this;
}

ProcessGuard::~ProcessGuard() {
  if (pidfd_ < 0) return;
  if (!exited()) kill_now();
  ::close(pidfd_);
  // Reap it if it is our child (directly, or as an orphan via the subreaper);
  // never waitpid(-1): another thread may be waiting for its own child.
  ::waitpid(pid_, nullptr, WNOHANG);
}

bool ProcessGuard::exited() const {
  if (pidfd_ < 0) return true;
  struct pollfd p {
    pidfd_, POLLIN, 0
  };
  return ::poll(&p, 1, 0) > 0;
}

bool ProcessGuard::wait_exit(std::chrono::milliseconds timeout) const {
  if (pidfd_ < 0) return true;
  struct pollfd p {
    pidfd_, POLLIN, 0
  };
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

void ProcessGuard::kill_now() {
  if (pidfd_ < 0) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0U);
  wait_exit(10s);
}

std::vector<pid_t> processes_mentioning(const std::string& needle) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::string cmdline = read_file(e.path() / "cmdline");
    if (cmdline.find(needle) != std::string::npos && alive(pid)) found.push_back(pid);
  }
  return found;
}

pid_t lock_holder(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int rc = ::fcntl(fd, F_GETLK, &fl);
  ::close(fd);
  if (rc < 0 || fl.l_type == F_UNLCK) return 0;
  return fl.l_pid;
}

pid_t pid_in(const std::string& pidfile) {
  std::string text = read_file(pidfile);
  return text.empty() ? 0 : static_cast<pid_t>(std::atol(text.c_str()));
}

std::vector<pid_t> children_of(pid_t pid) {
  std::istringstream in(
      read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  for (pid_t c = 0; in >> c;) out.push_back(c);
  return out;
}

RunOptions with_sanitizer_logs(const std::filesystem::path& dir, RunOptions options) {
  const std::string log_path = "log_path=" + (dir / "sanitizer").string();
  for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    const char* old = std::getenv(var);
    options.extra_env.push_back(std::string(var) + "=" + (old ? std::string(old) + ":" : "") +
                                log_path);
  }
  return options;
}

void expect_no_sanitizer_reports(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind("sanitizer", 0) == 0)
      ADD_FAILURE() << "sanitizer report from a daemon:\n" << read_file(entry.path());
}

int bind_datagram_socket(const std::string& path) {
  int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (sock >= 0 && ::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return sock;
  if (sock >= 0) ::close(sock);
  return -1;
}

Pty::Pty() {
  master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return;
  slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
}

Pty::~Pty() {
  if (slave >= 0) ::close(slave);
  if (master >= 0) ::close(master);
}

namespace {

// struct clone_args of clone3(2), up to set_tid_size (CLONE_ARGS_SIZE_VER1).
struct CloneArgs {
  std::uint64_t flags = 0;
  std::uint64_t pidfd = 0;
  std::uint64_t child_tid = 0;
  std::uint64_t parent_tid = 0;
  std::uint64_t exit_signal = SIGCHLD;
  std::uint64_t stack = 0;
  std::uint64_t stack_size = 0;
  std::uint64_t tls = 0;
  std::uint64_t set_tid = 0;
  std::uint64_t set_tid_size = 0;
};

// In the child: become a group leader and execute (async-signal-safe).
[[noreturn]] void become(char* const* argv) {
  ::setpgid(0, 0);
  ::execv(argv[0], argv);
  _exit(127);
}

pid_t read_number(const char* path) {
  std::string text = read_file(path);
  return text.empty() ? 0 : static_cast<pid_t>(std::atol(text.c_str()));
}

}  // namespace

pid_t start_with_pid(pid_t want, const std::vector<std::string>& argv, std::string& why) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  // 1. clone3 with the pid we want: exact, and no race with anyone.
  pid_t tid = want;
  CloneArgs args;
  args.set_tid = reinterpret_cast<std::uintptr_t>(&tid);
  args.set_tid_size = 1;
  long got = ::syscall(SYS_clone3, &args, sizeof args);
  if (got == 0) become(cargv.data());
  if (got == want) return want;
  why = std::string("clone3 with set_tid: ") + std::strerror(errno);
  if (got > 0) {  // cannot happen; do not leave it running
    ::kill(static_cast<pid_t>(got), SIGKILL);
    ::waitpid(static_cast<pid_t>(got), nullptr, 0);
    return 0;
  }
  if (errno == EEXIST) return 0;  // taken: no other way will do better

  // 2. ns_last_pid, then fork (others may fork in between: retry a little).
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fd = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      why += std::string("; ns_last_pid: ") + std::strerror(errno);
      break;
    }
    const std::string last = std::to_string(want - 1);
    const bool written = ::write(fd, last.data(), last.size()) == static_cast<ssize_t>(last.size());
    const int e = errno;
    ::close(fd);
    if (!written) {
      why += std::string("; ns_last_pid: ") + std::strerror(e);
      break;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::getpid() == want) become(cargv.data());
      _exit(0);
    }
    if (pid == want) return want;
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }

  // 3. Fork and reap until the counter comes round to `want`.
  const pid_t max = read_number("/proc/sys/kernel/pid_max");
  if (max <= 0 || max > 65536) {
    why += "; pid_max is " + std::to_string(max) + ", too many pids to cycle through";
    return 0;
  }
  for (long i = 0; i < 2L * max; ++i) {
    pid_t pid = ::vfork();  // the child only execs or exits: cheap
    if (pid == 0) {
      if (::getpid() == want) become(cargv.data());
      _exit(0);
    }
    if (pid < 0) {
      why += std::string("; fork: ") + std::strerror(errno);
      return 0;
    }
    if (pid == want) return want;
    ::waitpid(pid, nullptr, 0);
  }
  why += "; the pid was taken by someone else while cycling";
  return 0;
}

void reap_children() {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace dktest
