#!/usr/bin/env pwsh
# TradeRoom.Actors build script. On a fresh Linux machine:  dotnet tool restore && dotnet pwsh build.ps1 <target>
#   build  - restore and build the solution (Debug)
#   test   - build and run every test (same as `dotnet test`)
#   run    - run the server with development defaults (same as `dotnet run --project src/TradeRoom.Server`)
#   ci     - what CI runs: .ci/run
#   bench  - the benchmark scenarios against a Release server; rewrites docs/benchmarks.md (bash bench/run.sh)
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'run', 'ci', 'bench')]
    [string]$Target = 'build'
)

$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Step([string]$Command, [string[]]$Arguments) {
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Command $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

switch ($Target) {
    'build' { Invoke-Step dotnet @('build', 'TradeRoom.Actors.sln') }
    'test'  { Invoke-Step dotnet @('test', 'TradeRoom.Actors.sln') }
    'run'   { Invoke-Step dotnet @('run', '--project', 'src/TradeRoom.Server') }
    'ci'    { Invoke-Step bash @('.ci/run') }
    'bench' { Invoke-Step bash @('bench/run.sh') }
}
