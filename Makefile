# The two commands a new user runs: `make demo` and `make test`. Both make .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint fuzz mutants notebooks lab clean

# PYTHONWARNINGS=ignore: setuptools warns about every editable install; the install is fine.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Train on iris, on two moons and on digits (compiled: traced, trained by batched replay); everything lands in out/.
demo: $(STAMP)
	$(BIN)/valuegrad train --dataset iris --hidden 16 --optimizer adam --lr 0.01 --epochs 60 --seed 0 --out out/iris
	$(BIN)/valuegrad train --dataset moons --samples 200 --noise 0.1 --hidden 16,16 --init micrograd \
	    --loss hinge --optimizer sgd --lr 1.0 --schedule linear --weight-decay 2e-4 \
	    --batch-size 200 --epochs 100 --seed 0 --out out/moons
	$(BIN)/valuegrad train --dataset digits --hidden 32 --optimizer adam --lr 0.01 --epochs 10 --seed 0 --out out/digits
	$(BIN)/valuegrad draw "tanh(w*x + b)" --set w=-3 x=2 b=6.88 -o out/neuron.svg --steps out/neuron_steps.html
	$(BIN)/valuegrad draw --model out/iris/model.json --input 5.1,3.5,1.4,0.2 --collapse neuron -o out/iris/model.svg
	@echo "demo: models, histories and plots are in out/iris/, out/moons/ and out/digits/ (trained compiled);"
	@echo "      one neuron's graph is out/neuron.svg, its backward pass step by step out/neuron_steps.html,"
	@echo "      the iris model's graph, a box per neuron, out/iris/model.svg"

lint: $(STAMP)
	$(BIN)/ruff check engine nn tests benchmarks
	$(BIN)/mypy

# The notebooks run top to bottom in a fresh kernel (nbmake) and must be committed without outputs.
test: lint
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(BIN)/python -m pytest -q tests notebooks --nbmake

# The notebooks executed, as HTML with their outputs, for reading without Jupyter.
notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --to html --execute --output-dir out/notebooks notebooks/*.ipynb

lab: $(STAMP)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks

# Property tests at 10,000+ examples each (the long hypothesis profile): minutes, not seconds;
# then the command-line fuzzer, 2,000 random commands per test within FUZZ_SECONDS (600).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q tests/test_gradcheck.py tests/test_strategies.py tests/test_trace.py
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q tests/test_cli_fuzz.py --hypothesis-show-statistics

# Plant faults in every op and show that gradcheck catches, shrinks and blames each one.
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

bench: $(STAMP)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
