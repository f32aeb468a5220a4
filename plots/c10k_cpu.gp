# Server CPU time per request of the 16 active connections while N idle connections are held open
# (scenario c10k): flat for epoll, libuv and io_uring (they are told which descriptors are ready);
# rising for poll and select, which hand the kernel every descriptor on every call.
load "plots/common.gp"
set title "Server CPU per request vs idle connections (c10k: 16 active keep-alive connections)"
set xlabel "idle connections held open"
set ylabel "server CPU µs per request"
set yrange [0:*]
plot for [s in servers] sprintf("%s/c10k_cpu-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
