#include "mail/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

namespace mamori::mail {

namespace asio = boost::asio;
using generic_proto = asio::generic::stream_protocol;

// One io_context per thread ("shard"), each run by exactly one thread, and
// every connection lives on one shard. A milter exchange is a few small
// packets per message, so handing them between threads (one shared
// io_context, a strand per connection) cost more than the work: the futex
// wake-ups and context switches were most of the milter's CPU per message.
struct Server::Impl {
  struct Shard {
    asio::io_context io{1};  // concurrency hint 1: one thread, no internal locking
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_alive;
  };
  ServerOptions options;
  SessionDeps deps;
  std::vector<std::unique_ptr<Shard>> shards;  // shards[0] also runs the acceptor and timers
  // Ends of messages: content scans and audit appends, which block. Many at
  // once let concurrent verdicts share one audit fdatasync (group commit).
  std::optional<asio::thread_pool> verdict_pool;
  asio::io_context& io() { return shards[0]->io; }
  size_t next_shard = 0;  // used by the accept handler only (shard 0's thread)
  std::unique_ptr<asio::basic_socket_acceptor<generic_proto>> acceptor;
  std::optional<asio::steady_timer> tick;
  std::optional<asio::signal_set> signals;
  bool is_tcp = false;
  uint16_t port = 0;
  std::string unix_path;
  std::atomic<uint32_t> connections{0};
  std::atomic<bool> stopping{false};

  void Accept();
  void ScheduleTick();
  void StopNow() {  // on shard 0's thread
    if (stopping.exchange(true)) return;
    boost::system::error_code ec;
    if (acceptor) acceptor->close(ec);
    if (tick) tick->cancel();
    if (signals) signals->cancel(ec);
    for (auto& sh : shards) sh->io.stop();
  }
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl* server, generic_proto::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        idle_(socket_.get_executor()),
        idle_limit_(std::chrono::seconds(server->deps.policy->budgets.idle_seconds)),
        reader_(server->deps.policy->budgets.max_packet_bytes),
        session_(server->deps) {}
  ~Connection() { server_->connections--; }

  asio::any_io_executor executor() { return socket_.get_executor(); }

  void Start() {
    last_activity_ = std::chrono::steady_clock::now();
    ArmIdle(idle_limit_);
    Read();
  }

 private:
  // The idle timer is not re-armed on every packet (each re-arm cancels a
  // wait, which costs a handler run): reads only note the time, and the timer,
  // when it fires, closes the connection or sleeps for the time that is left.
  void ArmIdle(std::chrono::steady_clock::duration after) {
    idle_.expires_after(after);
    idle_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || !self->socket_.is_open()) return;
      auto idle_for = std::chrono::steady_clock::now() - self->last_activity_;
      if (idle_for < self->idle_limit_) return self->ArmIdle(self->idle_limit_ - idle_for);
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    });
  }

  void Read() {
    if (server_->is_tcp) {
      // Postfix does not wait for replies to most steps (SMFIP_NR_*) and leaves
      // Nagle on, so its next small packet waits for our ACK. Linux delays ACKs
      // (~40 ms) unless told otherwise, and the flag resets itself: set it
      // before every read.
      int one = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (ec) return Close();
    last_activity_ = std::chrono::steady_clock::now();
    reader_.Append(std::string_view(buf_.data(), n));
    out_.clear();
    Process();
  }

  // Handles the buffered packets. The end of a message is decided on the
  // verdict pool (the content scan and the audit fsync must not hold up the
  // other connections of this thread); processing resumes when it is done.
  void Process() {
    while (true) {
      auto next = reader_.Next();
      if (!next.ok()) {
        std::cerr << "mamori milter: closing connection: " << next.status().ToString() << "\n";
        return Close();
      }
      if (!next->has_value()) break;
      Status st = session_.Handle(**next, &out_);
      if (!st.ok()) {
        std::cerr << "mamori milter: closing connection: " << st.ToString() << "\n";
        return Close();
      }
      if (session_.done()) break;
      if (session_.verdict_pending()) {
        asio::post(*server_->verdict_pool, [self = shared_from_this()] {
          self->session_.DecideVerdict();
          asio::post(self->socket_.get_executor(), [self] {
            self->session_.FinishVerdict(&self->out_);
            self->Process();
          });
        });
        return;
      }
    }
    if (out_.empty()) {
      if (session_.done()) return Close();
      return Read();
    }
    // One write per batch of replies, so no reply waits for a delayed ACK.
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const boost::system::error_code& wec, size_t) {
                        if (wec || self->session_.done()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    boost::system::error_code ignored;
    idle_.cancel();
    socket_.close(ignored);
  }

  Server::Impl* server_;
  generic_proto::socket socket_;
  asio::steady_timer idle_;
  const std::chrono::steady_clock::duration idle_limit_;
  std::chrono::steady_clock::time_point last_activity_;
  milter::PacketReader reader_;
  Session session_;
  std::array<char, 65536 + 64> buf_;
  std::string out_;
};

}  // namespace

void Server::Impl::Accept() {
  // The accepted socket is bound to the next shard's io_context; its
  // connection starts there and never leaves it.
  Shard& target = *shards[next_shard];
  next_shard = (next_shard + 1) % shards.size();
  acceptor->async_accept(
      target.io, [this](const boost::system::error_code& ec, generic_proto::socket s) {
        if (stopping) return;
        if (!ec) {
          if (connections >= options.max_connections) {
            std::cerr << "mamori milter: refusing a connection: " << options.max_connections
                      << " connections already open (ServerOptions.max_connections)\n";
            boost::system::error_code ignored;
            s.close(ignored);
          } else {
            if (is_tcp) {
              int one = 1;
              ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            connections++;
            auto conn = std::make_shared<Connection>(this, std::move(s));
            asio::post(conn->executor(), [conn] { conn->Start(); });
          }
        } else if (ec == asio::error::operation_aborted) {
          return;
        }
        Accept();
      });
}

void Server::Impl::ScheduleTick() {
  if (!options.on_tick) return;
  tick->expires_after(std::chrono::seconds(options.tick_seconds));
  tick->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    options.on_tick();
    ScheduleTick();
  });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() {
  impl_->StopNow();
  // Connections still queued on a shard hold Impl's counters: destroy the
  // shards (and what uses them) while the rest of Impl is alive.
  // Verdicts being decided finish (their connections then see stopped
  // shards and close: Postfix tempfails); queued ones are dropped.
  impl_->verdict_pool->stop();
  impl_->verdict_pool->join();
  impl_->signals.reset();
  impl_->tick.reset();
  impl_->acceptor.reset();
  impl_->shards.clear();
  if (!impl_->unix_path.empty()) ::unlink(impl_->unix_path.c_str());
}

uint16_t Server::port() const { return impl_->port; }

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options, SessionDeps deps) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->deps = std::move(deps);
  impl->deps.defer_verdicts = true;
  impl->verdict_pool.emplace(static_cast<size_t>(std::max(1, impl->options.verdict_threads)));
  for (int i = 0; i < std::max(1, impl->options.threads); ++i)
    impl->shards.push_back(std::make_unique<Impl::Shard>());
  impl->tick.emplace(impl->io());
  const std::string& l = impl->options.listen;
  boost::system::error_code ec;
  try {
    if (l.rfind("unix:", 0) == 0 || l.rfind("local:", 0) == 0) {
      std::string path = l.substr(l.find(':') + 1);
      if (path.empty()) return InvalidArgument("--listen unix: needs a path");
      ::unlink(path.c_str());
      asio::local::stream_protocol::endpoint ep(path);
      impl->acceptor = std::make_unique<asio::basic_socket_acceptor<generic_proto>>(
          impl->io(), generic_proto::endpoint(ep));
      ::chmod(path.c_str(), 0660);
      impl->unix_path = path;
    } else if (l.rfind("inet:", 0) == 0 || l.rfind("inet6:", 0) == 0) {
      std::string rest = l.substr(l.find(':') + 1);
      size_t colon = rest.rfind(':');
      if (colon == std::string::npos) {
        return InvalidArgument("--listen " + l +
                               ": write inet:HOST:PORT, e.g. inet:127.0.0.1:10025");
      }
      std::string host = rest.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      int port = std::atoi(rest.substr(colon + 1).c_str());
      if (port < 0 || port > 65535) return InvalidArgument("--listen " + l + ": bad port");
      auto addr = asio::ip::make_address(host, ec);
      if (ec) return InvalidArgument("--listen " + l + ": '" + host + "' is not an IP address");
      asio::ip::tcp::endpoint ep(addr, static_cast<uint16_t>(port));
      impl->acceptor = std::make_unique<asio::basic_socket_acceptor<generic_proto>>(
          impl->io(), generic_proto(ep.protocol()));
      impl->acceptor->set_option(asio::socket_base::reuse_address(true));
      impl->acceptor->bind(generic_proto::endpoint(ep));
      impl->acceptor->listen(asio::socket_base::max_listen_connections);
      // Read back the port (for port 0).
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(impl->acceptor->native_handle(), reinterpret_cast<sockaddr*>(&ss), &len);
      if (ss.ss_family == AF_INET) {
        impl->port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      } else {
        impl->port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
      }
      impl->is_tcp = true;
    } else {
      return InvalidArgument("--listen " + l +
                             ": write inet:127.0.0.1:PORT or unix:/path/to/socket");
    }
  } catch (const boost::system::system_error& e) {
    return Unavailable("cannot listen on " + l + ": " + e.what());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Run(bool handle_signals) {
  Impl& s = *impl_;
  if (handle_signals) {
    s.signals.emplace(s.io(), SIGINT, SIGTERM);
    s.signals->async_wait([&s](const boost::system::error_code& ec, int) {
      if (!ec) s.StopNow();
    });
  }
  s.Accept();
  s.ScheduleTick();
  std::vector<std::thread> pool;
  for (size_t i = 1; i < s.shards.size(); ++i) {
    // An idle shard must keep running until Stop(), not return at once.
    s.shards[i]->keep_alive.emplace(s.shards[i]->io.get_executor());
    pool.emplace_back([&s, i] { s.shards[i]->io.run(); });
  }
  s.io().run();
  for (auto& sh : s.shards) sh->io.stop();
  for (auto& t : pool) t.join();
  return Status::Ok();
}

void Server::Stop() {
  asio::post(impl_->io(), [this] { impl_->StopNow(); });
}

}  // namespace mamori::mail
