// Command openb-table replays the openb experiment for every trace and
// strategy over several seeds and prints the average final GPU allocation
// next to the published numbers.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/brain/openb"
	"github.com/sluicehq/sluice/brain/place"
)

func main() {
	dir := flag.String("data", "../shared/data/openb", "directory holding the openb CSV files (default: beside the checkout, run from the repository root)")
	seeds := flag.Int("seeds", 10, "number of seeds (42, 43, ...)")
	traces := flag.String("traces", strings.Join(openb.Traces, ","), "comma-separated pod lists")
	strats := flag.String("strategies", "random,dot-product,best-fit,fgd,"+string(place.StrategyDefault), "comma-separated strategies")
	workers := flag.Int("workers", 2, "replays run in parallel")
	sample := flag.Int("sample", 0, "score only this many feasible hosts per pod (0 = all; see place.Profile.SampleFeasible)")
	flag.Parse()
	if err := run(*dir, *seeds, strings.Split(*traces, ","), strings.Split(*strats, ","), *workers, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "openb-table:", err)
		os.Exit(1)
	}
}

type job struct {
	tr    openb.Trace
	strat place.Strategy
	seed  uint64
	slot  *openb.Result
}

func run(dir string, seeds int, traces, strats []string, workers, sample int) error {
	start := time.Now()
	var ss []place.Strategy
	for _, s := range strats {
		st, err := place.ParseStrategy(s)
		if err != nil {
			return err
		}
		ss = append(ss, st)
	}
	results := map[string]map[place.Strategy][]openb.Result{}
	var jobs []job
	for _, name := range traces {
		tr, err := openb.LoadTrace(dir, name)
		if err != nil {
			return err
		}
		results[name] = map[place.Strategy][]openb.Result{}
		for _, st := range ss {
			rs := make([]openb.Result, seeds)
			results[name][st] = rs
			for i := range rs {
				jobs = append(jobs, job{tr: tr, strat: st, seed: uint64(42 + i), slot: &rs[i]})
			}
		}
	}
	ch := make(chan job)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				prof := openb.Profile(j.tr, j.strat)
				prof.SampleFeasible = sample
				r, err := openb.RunProfile(j.tr, prof, j.seed)
				if err != nil {
					errs <- err
					continue
				}
				*j.slot = r
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("final GPU allocation %%, mean over %d seeds (published in parentheses)\n", seeds)
	fmt.Printf("%-12s", "trace")
	for _, st := range ss {
		fmt.Printf(" %20s", st)
	}
	fmt.Println()
	for _, name := range traces {
		fmt.Printf("%-12s", name)
		for _, st := range ss {
			var sum float64
			for _, r := range results[name][st] {
				sum += r.Allocated
			}
			cell := fmt.Sprintf("%.2f", 100*sum/float64(seeds))
			if p, ok := openb.Published[name][st]; ok {
				cell += fmt.Sprintf(" (%.1f)", p)
			}
			fmt.Printf(" %20s", cell)
		}
		fmt.Println()
	}
	if rs, ok := results["default"]; ok {
		fmt.Printf("\nfragmented share of idle GPU at 90%% arrived, default trace (published in parentheses)\n")
		for _, st := range ss {
			var sum float64
			n := 0
			for _, r := range rs[st] {
				if r.FragAt90 >= 0 {
					sum += r.FragAt90
					n++
				}
			}
			cell := "n/a"
			if n > 0 {
				cell = fmt.Sprintf("%.1f%%", 100*sum/float64(n))
			}
			if p, ok := openb.PublishedFragAt90[st]; ok {
				cell += fmt.Sprintf(" (%.1f%%)", p)
			}
			fmt.Printf("  %-12s %s\n", st, cell)
		}
	}
	fmt.Printf("\n%d replays in %s\n", len(jobs), time.Since(start).Round(time.Second))
	return nil
}
