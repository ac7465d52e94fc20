# The scaling figures of 'make bench' as one PNG ('make bench-plot').
# Called with -e "datadir='DIR'; output='FILE.png'"; reads DIR/plot-*.dat
# written by mmn-bench --plot-dir DIR. Points are medians, bars min to max.

machine = system("cat '".datadir."/plot-machine.txt'")
set terminal pngcairo size 1400,1000 font "sans,11" noenhanced
set output output
set multiplot layout 2,2 title "libmmn benchmark: ".machine font "sans,13"

set grid ytics mytics lc rgb "#dddddd"
set key top left box opaque
set style data yerrorlines
set pointsize 1.2

# Colours: libmmn blue, baselines orange and grey.
c_lib = "#1f5fbf"; c_k = "#e07b00"; c_rw = "#777777"

# ---- Interval tree: ns/op against n, log-log.
set title "Interval tree: ns/op against n (dashed: sorted array baseline)"
set key bottom right
set logscale xy
set xlabel "subscriptions in the tree (n)"
set ylabel "ns per operation"
set xrange [500:2e6]
set format y "%g"
plot datadir."/plot-itree.dat" using 1:2:3:4 title "insert" lc rgb c_lib pt 7 lw 2, \
     ""                        using 1:5:6:7 title "remove" lc rgb "#2fa04f" pt 5 lw 2, \
     ""                        using 1:8:9:10 title "query (about 2 hits)" lc rgb "#a02fa0" pt 9 lw 2, \
     ""                        using 1:11:12:13 title "sorted: insert" lc rgb c_lib pt 6 dt 2 lw 2, \
     ""                        using 1:14:15:16 title "sorted: remove" lc rgb "#2fa04f" pt 4 dt 2 lw 2, \
     ""                        using 1:17:18:19 title "sorted: query" lc rgb "#a02fa0" pt 8 dt 2 lw 2
unset logscale; unset xrange; unset format

# ---- Read side: ns/op per thread, 1 and 2 threads.
set title "read_begin + read_retry: ns/op per thread (log scale)"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set key top left
set logscale y
set yrange [1:*]
set xlabel ""
set ylabel "ns per read (lower is better)"
set key top left
# The first three rows: the nothing-shared control has only a scaling figure.
plot datadir."/plot-readside.dat" every ::0::2 using 2:3:4:xtic(1) title "1 thread" lc rgb "#7fa7e0", \
     ""                           every ::0::2 using 5:6:7 title "2 threads, each" lc rgb c_lib
unset logscale; set yrange [*:*]

# ---- Read side scaling.
set title "Read side: throughput of 2 threads / 1 thread (2 = perfect)"
set ylabel "times one thread's throughput"
set yrange [0:3]
set style histogram errorbars gap 2 lw 1
plot datadir."/plot-readside.dat" using 8:9:10:xtic(1) title "2 threads / 1 thread" lc rgb c_lib, \
     1.8 with lines dt 2 lc rgb "#c00000" lw 2 title "target for libmmn: 1.8"
set yrange [*:*]

# ---- Fault pattern.
set title "Fault pattern, 2 faulting threads: faults/s under invalidation"
set style data yerrorlines
set xlabel "invalidations per second asked"
set ylabel "faults per second (millions, higher is better)"
set xrange [-0.3:3.3]
set yrange [0:*]
set key top right
set xtics ("0" 0, "1000" 1, "10000" 2, "100000" 3)
plot datadir."/plot-fault.dat" using 0:($2/1e6):($3/1e6):($4/1e6) title "libmmn" lc rgb c_lib pt 7 lw 2, \
     ""                        using 0:($5/1e6):($6/1e6):($7/1e6) title "kernel-style read side" lc rgb c_k pt 5 lw 2, \
     ""                        using 0:($8/1e6):($9/1e6):($10/1e6) title "rwlock + sorted array" lc rgb c_rw pt 9 lw 2

unset multiplot
