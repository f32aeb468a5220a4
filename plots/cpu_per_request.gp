# Server CPU time (user + system, all processes and threads) per request, for each scenario's
# representative point: the work per request, meaningful even when the client is the bottleneck.
load "plots/common.gp"
set title "Server CPU per request, by scenario (lower is better)"
set ylabel "server CPU µs per request"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set key autotitle columnheader
plot for [i=2:words(servers)+1] sprintf("%s/cpu_per_request.tsv", datadir) using i:xtic(1)
