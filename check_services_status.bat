@echo off
rem Show whether the collector and the broadcaster are running, with subscribers,
rem ticks sent and the age of the last tick. Exit code 0 only when both run.
rem For a full check of the live feed, run:  python -m datacentre verify
setlocal
cd /d "%~dp0"
set "PY=python"
if exist "venv\Scripts\python.exe" set "PY=venv\Scripts\python.exe"
if exist ".venv\Scripts\python.exe" set "PY=.venv\Scripts\python.exe"
"%PY%" -m datacentre status %*
exit /b %ERRORLEVEL%
