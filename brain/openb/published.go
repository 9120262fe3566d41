package openb

import "github.com/sluicehq/sluice/brain/place"

// Published holds the FGD paper's final GPU allocation (percent, mean of
// 10 seeds) per trace and strategy, as listed in the data's README.
var Published = map[string]map[place.Strategy]float64{
	"default":     {place.StrategyRandom: 87.5, place.StrategyDotProduct: 90.8, place.StrategyBestFit: 93.1, place.StrategyFGD: 95.4},
	"gpushare100": {place.StrategyRandom: 79.4, place.StrategyDotProduct: 82.4, place.StrategyBestFit: 85.0, place.StrategyFGD: 86.9},
	"multigpu50":  {place.StrategyRandom: 90.3, place.StrategyDotProduct: 94.8, place.StrategyBestFit: 95.7, place.StrategyFGD: 97.2},
	"gpuspec33":   {place.StrategyRandom: 86.5, place.StrategyDotProduct: 89.1, place.StrategyBestFit: 93.1, place.StrategyFGD: 94.5},
	"cpu250":      {place.StrategyRandom: 80.4, place.StrategyDotProduct: 83.8, place.StrategyBestFit: 91.4, place.StrategyFGD: 93.4},
}

// PublishedFragAt90 is the paper's fragmented share of idle GPU capacity
// (percent) on the default trace when 90% of the capacity has arrived.
var PublishedFragAt90 = map[place.Strategy]float64{
	place.StrategyRandom: 96.6, place.StrategyDotProduct: 94.2, place.StrategyBestFit: 74.1, place.StrategyFGD: 50.0,
}
