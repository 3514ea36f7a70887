@echo off
rem Start the data centre in the background: collector + WebSocket broadcaster.
rem Pid files and logs go to data\ (collector_service.log, broadcaster_service.log).
rem Options are passed on, e.g.:  start_all_services.bat --port 8765 --interval 5
setlocal
cd /d "%~dp0"
set "PY=python"
if exist "venv\Scripts\python.exe" set "PY=venv\Scripts\python.exe"
if exist ".venv\Scripts\python.exe" set "PY=.venv\Scripts\python.exe"
"%PY%" -m datacentre start %*
set "RC=%ERRORLEVEL%"
if not "%RC%"=="0" (
    echo.
    echo Starting failed: see data\collector_service.out and data\broadcaster_service.out
)
exit /b %RC%
