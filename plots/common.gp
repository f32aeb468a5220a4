# Settings every c10k-lab plot shares. report.py runs each plot script with these variables set:
#   datadir (the run's data/ directory), output (the image file), servers (space-separated names),
#   terminal (pngcairo or svg with size and font), reps (repetitions per point), and xlo/xhi when
#   every series has the same single x (a quick run).
eval "set terminal " . terminal
set output output
# Server names are titles as they are: "prefork:flock" or a "_" must not turn into markup.
set termoption noenhanced
# A default run's sixteen server configurations, the floor and nginx: eighteen distinguishable
# colours before they repeat (gnuplot has eight).
array server_colours[18] = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#f0e442", "#0072b2", \
                            "#e51e10", "#000000", "#8c564b", "#ff7f0e", "#7f7f7f", "#17becf", \
                            "#bcbd22", "#e377c2", "#1a9850", "#543005", "#9e9ac8", "#fc8d59"]
do for [i=1:18] { set linetype i lc rgb server_colours[i] }
set linetype cycle 18
set grid lc rgb "#dddddd"
set key outside right top
set border 3
set tics nomirror
set style line 1 lw 2 pt 7
set pointsize 1.2
# A line through the medians with error bars over the repetitions' min and max; with one
# repetition there is no range, so a plain line (and no error-bar symbol in the key).
if (!exists("reps")) reps = 3
series_using = reps > 1 ? "1:2:3:4" : "1:2"
series_style = reps > 1 ? "yerrorlines" : "linespoints"
if (exists("xlo")) set xrange [xlo:xhi]
